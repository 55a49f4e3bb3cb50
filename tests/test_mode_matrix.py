"""Every lesson's mode, in every setting a user can be in, and its helpers agreeing with it.

For each lesson's needs (read from its ``start_lesson`` call) x data folder set or not x
downloads possible, impossible or switched off x ``DEFECTLIB_FAST`` unset, 1 or 0: the mode
that ``start_lesson`` chooses, and that the data finders, the synthetic sizes and the
pretrained weights act on that one decision (issue 29: a set data folder with no downloads
made lessons 2-4 demos whose weights helper then raised as in full mode).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from pathlib import Path

import pytest

from defectlib import config, neu, severstal
from defectlib.config import start_lesson
from defectlib.config import pretrained

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def lesson_needs(path: Path) -> tuple[str, ...]:
    """The needs a notebook passes to ``start_lesson`` (it must call it once, with a literal)."""
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    calls = re.findall(r"start_lesson\(needs=(\([^)]*\))\)", code)
    assert len(calls) == 1, f"{path.name}: expected one start_lesson(needs=(...)) call, found {len(calls)}"
    return ast.literal_eval(calls[0])


LESSONS = {path.name[:2]: lesson_needs(path) for path in NOTEBOOKS}


def test_every_lesson_states_its_needs():
    assert LESSONS == {"01": ("neu",), "02": ("neu", "imagenet"), "03": ("neu", "imagenet", "preset"),
                       "04": ("severstal", "imagenet"), "05": ("neu",)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Small NEU and Severstal folders (60 NEU images a class: more than fast mode keeps)."""
    root = tmp_path_factory.mktemp("data")
    neu_dir = neu.make_synthetic_neu(root / "neu", per_class=60, size=64)
    severstal_dir = severstal.make_synthetic_severstal(root / "severstal", n_images=3, width=400)
    return neu_dir, severstal_dir, root / "home"


def expected_mode(needs, folder: bool, downloads: str, fast: str) -> str:
    """The rule of book/setup.md, 'Full mode, demo mode', written out."""
    if fast in ("0", "1"):
        return {"0": "full", "1": "fast"}[fast]
    data_ok = folder or downloads == "possible"
    weights_ok = downloads == "possible"
    ok = all(data_ok if need in ("neu", "severstal") else weights_ok for need in needs)
    return "full" if ok else "demo"


CASES = list(itertools.product(sorted(LESSONS), [True, False], ["possible", "impossible", "offline"],
                               ["", "1", "0"]))


@pytest.mark.parametrize(("lesson", "folder", "downloads", "fast"), CASES)
def test_the_mode_and_the_helpers_agree(monkeypatch, folders, capsys, lesson, folder, downloads, fast):
    neu_dir, severstal_dir, home = folders
    needs = LESSONS[lesson]
    for name in ("DEFECTLIB_FAST", "DEFECTLIB_NEU_DIR", "DEFECTLIB_SEVERSTAL_DIR", "DEFECTLIB_OFFLINE",
                 "DEFECTLIB_WEIGHTS_DIR",
                 "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEFECTLIB_DATA_HOME", str(home))
    monkeypatch.setenv("KAGGLE_USERNAME", "ada")  # credentials: a possible download is really possible
    monkeypatch.setenv("KAGGLE_KEY", "k")
    if fast:
        monkeypatch.setenv("DEFECTLIB_FAST", fast)
    if folder:
        monkeypatch.setenv("DEFECTLIB_NEU_DIR", str(neu_dir))
        monkeypatch.setenv("DEFECTLIB_SEVERSTAL_DIR", str(severstal_dir))
    if downloads == "offline":
        monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")
    online = downloads == "possible"
    monkeypatch.setattr(config, "_answers", lambda host, port: online)

    def download(*args, **kwargs):
        assert downloads != "offline", "a download was tried with DEFECTLIB_OFFLINE=1"
        if not online:
            raise ConnectionError("no route to host")
        return str(neu_dir if "neu" in args[0] else severstal_dir)

    monkeypatch.setattr("kagglehub.dataset_download", download)
    monkeypatch.setattr("kagglehub.competition_download", download)
    made = []
    monkeypatch.setattr(neu, "make_synthetic_neu", lambda root, per_class, seed: made.append(per_class) or neu_dir)
    monkeypatch.setattr(severstal, "make_synthetic_severstal",
                        lambda root, n_images, seed: made.append(n_images) or severstal_dir)

    cfg = start_lesson(needs=needs)
    mode = "demo" if cfg.demo else "fast" if cfg.fast else "full"
    assert mode == expected_mode(needs, folder, downloads, fast)
    assert config.current() is cfg

    # The data: the folder when set, else the download when possible, else the stand-in at the mode's size.
    if "neu" in needs:
        data = neu.find_neu()
        assert data.source == ("synthetic" if folder or not online else "kaggle")  # the folder is a stand-in too
        assert made == ([] if folder or online else [cfg.pick(full=300, fast=50)])
        per_class = data.files[data.files.split == "train"].groupby("class_name").size()
        assert (per_class == (40 if cfg.fast else 48)).all()
    else:
        data = severstal.find_severstal()
        assert data.source == ("folder" if folder else "kaggle" if online else "synthetic")
        assert made == ([] if folder or online else [cfg.pick(full=800, fast=24)])

    # The weights: real when they can be downloaded; else random in fast and demo runs, a clear stop in full mode.
    def build(weights):
        if weights is not None and not online:
            raise OSError("no route to host")
        return "pretrained" if weights else "random"

    if any(need in needs for need in ("imagenet", "preset")):
        if online:
            assert pretrained(build, "a toy") == ("pretrained", True)
        elif cfg.fast:
            assert pretrained(build, "a toy") == ("random", False)
            assert ("DEMO RUN" if cfg.demo else "FAST MODE") in capsys.readouterr().out
        else:
            assert fast == "0", "an automatic choice of full mode must be able to get its weights"
            with pytest.raises(RuntimeError, match="Could not load the pretrained weights.*DEFECTLIB_FAST=1"):
                pretrained(build, "a toy")
