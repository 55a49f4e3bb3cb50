"""The repository URL is set once (``_config.yml``) and ``tools/set_repo_url.py`` writes it everywhere."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import set_repo_url  # noqa: E402  (tools/ is not a package)

sys.path.remove(str(ROOT / "tools"))
pytest.importorskip("yaml", reason="PyYAML (installed with jupyter-book) reads _config.yml")


def test_every_place_agrees_with_config(capsys):
    assert set_repo_url.main(["--check"]) == 0, capsys.readouterr().err


def test_every_notebook_links_the_course_site():
    repo = set_repo_url.configured()
    missing = set_repo_url.site_link_missing(repo)
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    if missing == notebooks:
        pytest.skip(f"no notebook links {repo.pages} in its first Markdown cell yet")
    assert not missing, f"first Markdown cell without the link {repo.pages}: {missing}"


@pytest.fixture
def copy(tmp_path) -> Path:
    """The files that carry the URL, copied, with a second github.io link in a notebook's intro."""
    for rule in set_repo_url.TEXT_RULES:
        (tmp_path / rule[0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rule[0], tmp_path / rule[0])
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.keras", "outputs"))
    first = tmp_path / "notebooks" / "01_cnn_from_scratch.ipynb"
    nb = json.loads(first.read_text(encoding="utf-8"))
    intro = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    intro["source"].append(f"\nSite: {set_repo_url.configured().pages}; boxes: https://coderefinery.github.io/sphinx-lesson/\n")
    first.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return tmp_path


def test_a_new_url_reaches_every_place(copy, capsys):
    config = copy / "_config.yml"
    old = set_repo_url.configured(copy)
    config.write_text(config.read_text(encoding="utf-8").replace(old.url, "https://github.com/Ada-Lab/defects"),
                      encoding="utf-8")
    assert set_repo_url.main(["--check", "--root", str(copy)]) == 1
    assert set_repo_url.main(["--root", str(copy)]) == 0
    assert set_repo_url.main(["--check", "--root", str(copy)]) == 0
    capsys.readouterr()

    text = {name: (copy / name).read_text(encoding="utf-8") for name in
            ("pyproject.toml", "README.md", "book/setup.md", "tests/test_site.py")}
    assert 'Homepage = "https://github.com/Ada-Lab/defects"' in text["pyproject.toml"]
    assert 'Issues = "https://github.com/Ada-Lab/defects/issues"' in text["pyproject.toml"]
    assert 'Documentation = "https://ada-lab.github.io/defects/"' in text["pyproject.toml"]
    assert "colab.research.google.com/github/Ada-Lab/defects/blob/main/notebooks/" in text["README.md"]
    assert "<https://ada-lab.github.io/defects/>" in text["README.md"]
    assert "https://github.com/Kaggle/kagglehub" in text["README.md"]  # other GitHub links stay
    assert "git clone https://github.com/Ada-Lab/defects\ncd defects\n" in text["book/setup.md"]
    assert 'REPOSITORY = "Ada-Lab/defects"' in text["tests/test_site.py"]
    for path in sorted((copy / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        install = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        assert 'REPOSITORY = "https://github.com/Ada-Lab/defects"' in install
        assert old.slug not in install
    intro = "".join(json.loads((copy / "notebooks" / "01_cnn_from_scratch.ipynb").read_text(encoding="utf-8"))
                    ["cells"][0]["source"])
    assert "Site: https://ada-lab.github.io/defects/;" in intro and old.pages not in intro
    assert "https://coderefinery.github.io/sphinx-lesson/" in intro


def test_a_missing_place_is_an_error(copy):
    setup = copy / "book" / "setup.md"
    setup.write_text(setup.read_text(encoding="utf-8").replace("git clone", "git-clone"), encoding="utf-8")
    with pytest.raises(ValueError, match="book/setup.md"):
        set_repo_url.main(["--root", str(copy)])
