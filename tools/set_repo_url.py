"""Write the course's repository URL, set once in ``_config.yml``, everywhere else that needs it.

The one setting is ``repository.url`` (and ``repository.branch``) in ``_config.yml``; Jupyter
Book's launch buttons (Colab, Binder) and repository/issues buttons read it from there. This
script writes it, or what is derived from it, into:

- ``pyproject.toml``: ``Homepage``, ``Issues`` and ``Documentation`` (the site) URLs;
- ``README.md``: the Colab link, the ``git clone`` command and the site link;
- ``book/setup.md``: the ``git clone`` and ``cd`` commands;
- each notebook's install cell (``REPOSITORY = "..."``) and the site link in its first
  Markdown cell;
- ``tests/test_site.py``: the ``owner/name`` its launch-button checks expect.

The site link is the GitHub Pages address of the repository: ``https://github.com/OWNER/NAME``
gives ``https://owner.github.io/NAME/``. Usage (``make repo-url`` runs the first)::

    python tools/set_repo_url.py            # write every place from _config.yml
    python tools/set_repo_url.py --check    # exit 1 and list the places that disagree
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUG = r"[\w.-]+/[\w.-]+?"
PAGES = re.compile(r"https://[\w-]+\.github\.io/(?:[\w.-]+/)?")


@dataclass(frozen=True)
class Repository:
    """A GitHub repository: ``owner/name`` and its default branch."""

    slug: str
    branch: str = "main"

    @classmethod
    def from_url(cls, url: str, branch: str = "main") -> "Repository":
        """Parse ``https://github.com/OWNER/NAME``.

        Examples
        --------
        >>> Repository.from_url("https://github.com/Ada/course.git").slug
        'Ada/course'
        >>> Repository.from_url("https://gitlab.com/a/b")
        Traceback (most recent call last):
        ...
        ValueError: repository.url 'https://gitlab.com/a/b' is not https://github.com/OWNER/NAME
        """
        m = re.fullmatch(rf"https://github\.com/({SLUG})(?:\.git)?/?", url.strip())
        if not m:
            raise ValueError(f"repository.url {url!r} is not https://github.com/OWNER/NAME")
        return cls(m.group(1), branch)

    @property
    def url(self) -> str:
        return f"https://github.com/{self.slug}"

    @property
    def pages(self) -> str:
        """The GitHub Pages address of the site.

        Examples
        --------
        >>> Repository("Ada/course").pages, Repository("Ada/ada.github.io").pages
        ('https://ada.github.io/course/', 'https://ada.github.io/')
        """
        owner, name = self.slug.split("/")
        if name.lower() == f"{owner.lower()}.github.io":
            return f"https://{owner.lower()}.github.io/"
        return f"https://{owner.lower()}.github.io/{name}/"


def configured(root: Path = ROOT) -> Repository:
    """The repository set in ``_config.yml`` (``repository.url`` and ``repository.branch``)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    return Repository.from_url(repo.get("url", ""), str(repo.get("branch") or "main"))


# Each rule: a file (glob), a pattern whose group 1 is what the repository decides, and what
# group 1 becomes. Text outside group 1 is kept as it is.
TEXT_RULES = [
    ("pyproject.toml", r'^Homepage = "([^"]*)"$', lambda r: r.url),
    ("pyproject.toml", r'^Issues = "([^"]*)"$', lambda r: f"{r.url}/issues"),
    ("pyproject.toml", r'^Documentation = "([^"]*)"$', lambda r: r.pages),
    ("README.md", rf"https://colab\.research\.google\.com/github/({SLUG}/blob/[\w.-]+)/notebooks/",
     lambda r: f"{r.slug}/blob/{r.branch}"),
    ("README.md", r"^git clone (\S+)$", lambda r: r.url),
    ("README.md", r"^cd (\S+)$", lambda r: r.slug.split("/")[1]),
    ("README.md", r"^The course site: <(\S+)>", lambda r: r.pages),
    ("book/setup.md", r"^git clone (\S+)$", lambda r: r.url),
    ("book/setup.md", r"^cd (\S+)$", lambda r: r.slug.split("/")[1]),
    ("tests/test_site.py", r'^REPOSITORY = "([^"]*)"$', lambda r: r.slug),
]


def _sub(pattern: str, value: str, text: str, flags: int = re.MULTILINE) -> tuple[str, list[str]]:
    """Replace group 1 of every match of ``pattern`` by ``value``; also return the old values."""
    old = []

    def one(m: re.Match) -> str:
        old.append(m.group(1))
        return m.group(0)[: m.start(1) - m.start(0)] + value + m.group(0)[m.end(1) - m.start(0):]

    return re.sub(pattern, one, text, flags=flags), old


def rewrite(repo: Repository, root: Path = ROOT) -> dict[Path, str]:
    """The new text of every file whose repository places do not match ``repo`` (nothing is written).

    Raises ``ValueError`` when a file lacks a place it must have (a rule matched nothing).
    """
    changed: dict[Path, str] = {}
    for name, pattern, value in TEXT_RULES:
        path = root / name
        text = changed.get(path) or path.read_text(encoding="utf-8")
        new, old = _sub(pattern, value(repo), text)
        if not old:
            raise ValueError(f"{name}: no line matches {pattern!r}; the repository URL has no place there")
        if new != text:
            changed[path] = new
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        original = path.read_text(encoding="utf-8")
        nb = json.loads(original)
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        source, old = _sub(r'^REPOSITORY = "([^"]*)"', repo.url, "".join(code["source"]))
        if len(old) != 1:
            raise ValueError(f"{path.name}: the install cell needs one line 'REPOSITORY = \"...\"', found {len(old)}")
        code["source"] = source.splitlines(keepends=True)
        olds = {Repository.from_url(url).pages for url in old} | {repo.pages}
        intro = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
        text = "".join(intro["source"])
        for pages in olds:  # only the site links of this course, not other github.io pages
            text = text.replace(pages, repo.pages)
        intro["source"] = text.splitlines(keepends=True)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != original:
            changed[path] = new
    return changed


def site_link_missing(repo: Repository, root: Path = ROOT) -> list[str]:
    """Notebooks whose first Markdown cell does not link the course site."""
    missing = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        intro = next(c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown")
        if repo.pages not in "".join(intro["source"]):
            missing.append(path.name)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a place disagrees")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repo = configured(args.root)
    changed = rewrite(repo, args.root)
    names = [str(p.relative_to(args.root)) for p in changed]
    if args.check:
        if changed:
            print(f"Not {repo.url} (from _config.yml) in: {', '.join(names)}. Run: make repo-url", file=sys.stderr)
            return 1
        print(f"Every place has {repo.url} (site {repo.pages}).")
        return 0
    for path, text in changed.items():
        path.write_text(text, encoding="utf-8")
    print(f"{repo.url} (site {repo.pages}) written into: {', '.join(names) or 'nothing (all agreed)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
