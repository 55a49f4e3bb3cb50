"""Run settings for the whole course, read from environment variables in one place.

``DEFECTLIB_FAST``: ``1`` fast mode, ``0`` full; unset or ``auto``: full if data and weights can be had, else a demo.
``DEFECTLIB_SEED``: global random seed (default ``42``).
``DEFECTLIB_NEU_DIR``: folder holding the NEU surface defect database.
``DEFECTLIB_SEVERSTAL_DIR``: folder holding the Severstal files (``train_images/``, ``train.csv``).
``DEFECTLIB_DATA_HOME``: where generated data and outputs go (default ``~/.cache/defectlib``).
``DEFECTLIB_OFFLINE``: ``1`` skips every download.
``DEFECTLIB_WEIGHTS_DIR``: pretrained weights to use instead of downloading them (:func:`weights_file` names them).

A lesson decides its mode once with :func:`start_lesson`; helpers read it through :func:`current`.
"""

from __future__ import annotations

import os
import socket
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# What a lesson can need, and the host its download comes from.
KAGGLE = ("www.kaggle.com", 443)
GOOGLE_STORAGE = ("storage.googleapis.com", 443)
DOWNLOAD_HOSTS = {"neu": KAGGLE, "severstal": KAGGLE, "imagenet": GOOGLE_STORAGE, "preset": KAGGLE}
NEEDS = tuple(DOWNLOAD_HOSTS)
MISSING_NEED = {"neu": "the NEU data (DEFECTLIB_NEU_DIR is not set)",
                "severstal": "the Severstal data (DEFECTLIB_SEVERSTAL_DIR is not set)",
                "imagenet": "the ImageNet weights of keras.applications",
                "preset": "the KerasHub preset"}


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={os.environ[name]!r}: expected one of 1/0, true/false, yes/no, on/off")


def _folder(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class Settings:
    """The settings of one run. Build it with :func:`settings`.

    >>> s = Settings(fast=True, seed=1, neu_dir=None, severstal_dir=None,
    ...              data_home=Path("/tmp/x"), offline=True)
    >>> s.pick(full=30, fast=2)
    2
    """

    fast: bool
    seed: int
    neu_dir: Path | None
    severstal_dir: Path | None
    data_home: Path
    offline: bool
    weights_dir: Path | None = None  # DEFECTLIB_WEIGHTS_DIR: weights files and KerasHub presets, no download
    demo_reason: str = ""  # set when fast mode was chosen because the real data or weights are missing

    @property
    def demo(self) -> bool:
        """True when this run is a demo because the real data or weights cannot be had."""
        return bool(self.demo_reason)

    def pick(self, full: T, fast: T) -> T:
        """Return ``fast`` in fast mode and ``full`` otherwise."""
        return fast if self.fast else full

    def __str__(self) -> str:
        if self.demo:
            bar = "=" * 78
            why = textwrap.fill(f"DEMO RUN: {self.demo_reason}.", 78)
            mode = (f"DEMO (fast mode)\n{bar}\n{why}\n"
                    "So this lesson runs as a demo: fast-mode sizes, the synthetic stand-in data\n"
                    "and random weights where real ones are missing. Its numbers are NOT results.\n"
                    "For the real lesson set DEFECTLIB_NEU_DIR / DEFECTLIB_SEVERSTAL_DIR, or run\n"
                    "with internet access. DEFECTLIB_FAST=0 forces full mode: on the stand-ins,\n"
                    f"and it stops if pretrained weights cannot be had.\n{bar}")
        elif self.fast:
            mode = "FAST (small data, few epochs: numbers are not meaningful)"
        else:
            mode = "full"
        return (
            f"mode: {mode}\nseed: {self.seed}\n"
            f"NEU folder: {self.neu_dir or '(not set)'}\n"
            f"Severstal folder: {self.severstal_dir or '(not set)'}\n"
            f"data home: {self.data_home}\noffline: {self.offline}"
            + (f"\nweights folder: {self.weights_dir}" if self.weights_dir else "")
        )


def settings(needs: Iterable[str] | None = None) -> Settings:
    """Read the run settings from the environment; a demo reason is set when ``needs`` cannot be had.

    Parameters
    ----------
    needs : what the lesson needs, among :data:`NEEDS`, or ``None`` (a data folder or Kaggle).

    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ.update(DEFECTLIB_OFFLINE="1"); os.environ.pop("DEFECTLIB_FAST", None)
    >>> os.environ.pop("DEFECTLIB_NEU_DIR", None); os.environ.pop("DEFECTLIB_SEVERSTAL_DIR", None)
    >>> settings(needs=("neu",)).demo_reason
    'cannot get the NEU data (DEFECTLIB_NEU_DIR is not set): downloads are off (DEFECTLIB_OFFLINE=1)'
    >>> os.environ.clear(); os.environ.update(saved)
    """
    seed_text = os.environ.get("DEFECTLIB_SEED", "42").strip()
    try:
        seed = int(seed_text)
    except ValueError:
        raise ValueError(f"DEFECTLIB_SEED={seed_text!r}: expected a whole number") from None
    neu_dir, severstal_dir = _folder("DEFECTLIB_NEU_DIR"), _folder("DEFECTLIB_SEVERSTAL_DIR")
    offline, weights_dir = _flag("DEFECTLIB_OFFLINE"), _folder("DEFECTLIB_WEIGHTS_DIR")
    if weights_dir is not None and not weights_dir.is_dir():
        raise ValueError(f"DEFECTLIB_WEIGHTS_DIR={weights_dir}: not a folder")
    if os.environ.get("DEFECTLIB_FAST", "").strip().lower() in ("", "auto"):
        demo_reason = _missing(needs, neu_dir, severstal_dir, offline, weights_dir)
        fast = bool(demo_reason)
    else:
        fast, demo_reason = _flag("DEFECTLIB_FAST"), ""
    return Settings(
        fast=fast,
        seed=seed,
        neu_dir=neu_dir,
        severstal_dir=severstal_dir,
        data_home=_folder("DEFECTLIB_DATA_HOME") or Path.home() / ".cache" / "defectlib",
        offline=offline,
        weights_dir=weights_dir,
        demo_reason=demo_reason,
    )


def _missing(needs: Iterable[str] | None, neu_dir: Path | None, severstal_dir: Path | None,
             offline: bool, weights_dir: Path | None = None) -> str:
    """Why the real lesson cannot run here, or ``""`` when it can."""
    needs = None if needs is None else tuple(needs)
    unknown = set(needs or ()) - set(NEEDS)
    if unknown:
        raise ValueError(f"needs=...: unknown {sorted(unknown)}; expected some of {NEEDS}")
    if needs is None:
        problem = download_problem("neu", offline)
        if neu_dir or severstal_dir or not problem:
            return ""
        return f"no data folder is set (DEFECTLIB_NEU_DIR, DEFECTLIB_SEVERSTAL_DIR) and {problem}"
    folders = {"neu": neu_dir, "severstal": severstal_dir, "imagenet": weights_dir, "preset": weights_dir}
    reasons, problems = [], []
    for need in needs:
        if folders.get(need):
            continue
        problem = download_problem(need, offline)
        if problem:
            reasons.append(MISSING_NEED[need])
            problems.append(problem)
        elif need == "severstal" and not kaggle_credentials():
            reasons.append("the Severstal data (DEFECTLIB_SEVERSTAL_DIR is not set, and the download needs "
                           "Kaggle credentials, which were not found)")
    if not reasons:
        return ""
    why = f": {'; '.join(dict.fromkeys(problems))}" if problems else ""
    return "cannot get " + " and ".join(reasons) + why


def download_problem(need: str, offline: bool) -> str:
    """Why what ``need`` names cannot be downloaded, or ``""`` when its host answers.

    >>> download_problem("imagenet", offline=True)
    'downloads are off (DEFECTLIB_OFFLINE=1)'
    """
    if offline:
        return "downloads are off (DEFECTLIB_OFFLINE=1)"
    host, port = DOWNLOAD_HOSTS[need]
    if not _answers(host, port):
        return f"downloads are not possible ({host} does not answer)"
    return ""


@lru_cache(maxsize=None)
def _answers(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` accepts a TCP connection (asked once per process)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


_ACTIVE: Settings | None = None  # the decision of start_lesson(), read by current()


def current() -> Settings:
    """The settings :func:`start_lesson` decided, else those read from the environment.

    >>> _ = use(Settings(fast=True, seed=5, neu_dir=None, severstal_dir=None, data_home=Path("/tmp"), offline=True))
    >>> current().seed
    5
    >>> _ = use(None)
    """
    return _ACTIVE if _ACTIVE is not None else settings()


def use(cfg: Settings | None) -> Settings | None:
    """Make ``cfg`` the run's settings for :func:`current` (``None``: read the environment again)."""
    global _ACTIVE
    _ACTIVE = cfg
    return cfg


def start_lesson(needs: Iterable[str]) -> Settings:
    """Decide a lesson's mode once, keep it for :func:`current`, print it and seed everything.

    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ.update(DEFECTLIB_FAST="1", DEFECTLIB_SEED="7")
    >>> cfg = start_lesson(needs=("neu",))  # doctest: +ELLIPSIS
    mode: FAST ...
    >>> cfg is current(), cfg.seed
    (True, 7)
    >>> _ = use(None); os.environ.clear(); os.environ.update(saved)
    """
    import warnings

    cfg = use(settings(needs=tuple(needs)))
    print(cfg, flush=True)
    seed_everything(cfg.seed)
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    return cfg


def kaggle_credentials() -> bool:
    """Whether kagglehub finds Kaggle credentials (an unreadable file counts as none).

    >>> isinstance(kaggle_credentials(), bool)
    True
    """
    from kagglehub.config import get_kaggle_credentials

    try:
        return get_kaggle_credentials() is not None
    except ValueError:  # a kaggle.json that is not JSON or lacks "username" or "key"
        return False


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and TensorFlow (through Keras) and return the seed used.

    >>> seed_everything(3)
    3
    """
    import keras

    seed = current().seed if seed is None else seed
    keras.utils.set_random_seed(seed)
    return seed


def caveat(synthetic: bool, weights: bool = True, images: int | None = None) -> None:
    """Print one line under a result saying what weakens it, if anything.

    Parameters
    ----------
    synthetic : the data is the synthetic stand-in.
    weights : the pretrained weights were loaded (``False``: random weights).
    images : how many images the figure is measured on (fewer than 100 is said).

    >>> _ = use(Settings(fast=True, seed=1, neu_dir=None, severstal_dir=None, data_home=Path("/tmp"), offline=True))
    >>> caveat(synthetic=True, weights=False, images=24)  # doctest: +NORMALIZE_WHITESPACE
    CAVEAT: synthetic stand-in data; RANDOM weights instead of pretrained ones, so NOT transfer learning;
    fast mode: a small subset and few epochs; only 24 images scored. These numbers are not results.
    >>> _ = use(None)
    """
    notes = {"synthetic stand-in data": synthetic,
             "RANDOM weights instead of pretrained ones, so NOT transfer learning": not weights,
             "fast mode: a small subset and few epochs": current().fast,
             f"only {images} images scored": images is not None and images < 100}
    if any(notes.values()):
        text = "CAVEAT: " + "; ".join(note for note, on in notes.items() if on) + ". These numbers are not results."
        print(textwrap.fill(text, 88, break_long_words=False, break_on_hyphens=False))  # short lines: an output box hides what is past its width


def banner(*lines: str) -> None:
    """Print ``lines`` between two rules of ``=``.

    >>> banner("NEU data: SYNTHETIC", "not real results")  # doctest: +NORMALIZE_WHITESPACE
    ==============================================================================
    NEU data: SYNTHETIC
    not real results
    ==============================================================================
    """
    bar = "=" * 78
    lines = [textwrap.fill(line, 78, break_long_words=False, break_on_hyphens=False) for line in lines]  # paths whole
    print("\n".join([bar, *lines, bar]), flush=True)


def write_complete(out: str | Path, write: Callable[[Path], None], marker: str) -> Path:
    """Make the folder ``out`` with ``write(folder)`` in a temporary folder renamed at the end, never half-written.

    A complete ``out`` (with ``marker``) is reused; a non-empty one without it raises a ``DataError``.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "set"
    >>> write_complete(out, lambda d: (d / "DONE").write_text("ok"), marker="DONE").name
    'set'
    >>> write_complete(out, lambda d: 1 / 0, marker="DONE") == out   # complete: reused, write not called
    True
    """
    import shutil
    import tempfile

    from .errors import DataError

    out = Path(out)
    if (out / marker).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write(work)
        if not (work / marker).is_file():
            raise RuntimeError(f"write_complete: the writer did not write {marker} in {work}")
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif out.exists() and not (out / marker).is_file():
            raise DataError(f"{out} exists and is not a complete generated set (it has no {marker}): "
                            "remove it, or choose another folder")
        try:
            work.rename(out)
        except OSError:
            if not (out / marker).is_file():  # not a concurrent writer that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when the rename succeeded
    return out


KERAS_WEIGHTS_FILES = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
    "resnet50_v2": "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


def weights_file(network: str, size: int = 224) -> str:
    """The name Keras gives the ImageNet weights of a ``keras.applications`` base (no top) in ``~/.keras/models``.

    >>> weights_file("mobilenet_v2", 96), weights_file("mobilenet_v2", 200)
    ('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5', 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5')
    """
    return KERAS_WEIGHTS_FILES[network].format(size=size if size in (96, 128, 160, 192, 224) else 224)


def keras3_name(file: str) -> str:
    """The name Keras 3 requires to save weights under ``file``'s name (``model.save_weights`` wants ``.weights.h5``).

    >>> keras3_name(weights_file("resnet50"))
    'resnet50_weights_tf_dim_ordering_tf_kernels_notop.weights.h5'
    """
    return f"{Path(file).stem}.weights.h5"


def _local_weights(folder: Path, file: str, what: str) -> Path:
    """``folder/file``, or the same name saved by Keras 3 (:func:`keras3_name`); a clear error when neither is there."""
    for candidate in (folder / file, folder / keras3_name(file)):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{what}: DEFECTLIB_WEIGHTS_DIR={folder} has no {file}. Copy it there (Keras keeps "
                            "the weights it downloaded in ~/.keras/models), or unset DEFECTLIB_WEIGHTS_DIR.")


def pretrained(build: Callable[[str | None], T], what: str, file: str | None = None) -> tuple[T, bool]:
    """Build a model with ``build("imagenet")``, falling back to ``build(None)`` in fast mode; return ``(model, real)``.

    With ``DEFECTLIB_WEIGHTS_DIR`` set, ``build`` gets the path of ``file`` in that folder instead: no download.

    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ.update(DEFECTLIB_FAST="1", DEFECTLIB_OFFLINE="1")
    >>> model, real = pretrained(lambda w: f"model with weights={w}", "a toy")  # doctest: +ELLIPSIS
    ===...
    >>> model, real
    ('model with weights=None', False)
    >>> os.environ.clear(); os.environ.update(saved)
    """
    cfg = current()
    if cfg.weights_dir is not None and file is not None:
        local = _local_weights(cfg.weights_dir, file, what)
        print(f"Pretrained weights: {what}, from {local}.", flush=True)
        return build(str(local)), True
    if not cfg.offline:
        try:
            model = build("imagenet")
        except Exception as error:  # noqa: BLE001 - any failure to fetch weights is handled below
            reason = f"{type(error).__name__}: {textwrap.shorten(str(error), 200, placeholder=' ...')}"
        else:
            print(f"Pretrained weights: {what}, loaded (downloaded, or from the local cache).", flush=True)
            return model, True
    else:
        reason = "DEFECTLIB_OFFLINE=1, so no download was tried"
    how = ("Run with internet access once (the weights are then cached in ~/.keras/models or "
           "the KerasHub/Kaggle cache), or copy those files into a folder named by DEFECTLIB_WEIGHTS_DIR.")
    if not cfg.fast:
        raise RuntimeError(f"Could not load the pretrained weights for {what} ({reason}). {how} "
                           "Or run the lesson as a demo with random weights: set DEFECTLIB_FAST=1, or leave "
                           "DEFECTLIB_FAST unset on a machine without downloads.")
    mode = "DEMO RUN" if cfg.demo else "FAST MODE"
    banner(f"NO PRETRAINED WEIGHTS for {what}: {reason}.",
           f"{mode}: continuing with RANDOM weights so the code runs. This is NOT transfer learning, and its "
           "numbers say nothing about pretrained models.", how)
    return build(None), False
