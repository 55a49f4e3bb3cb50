"""Checks of the built course site: pages, directives, links, glossary and bibliography.

``make book-check`` builds the site with notebook execution off into
``_build/check/_build/html`` and runs this file with ``SITE_DIR`` pointing there. Run it
against another build with ``SITE_DIR=_build/html python -m pytest tests/test_site.py``.

Without ``SITE_DIR`` the default build folder is used when it exists and is newer than the
sources; otherwise the site tests are skipped with the reason (``make test`` runs this file
once with the unit tests, before ``make book-check`` has built the site, then again after).
With ``SITE_DIR`` set, a missing site is a failure.

Only the standard library is used to read the HTML (``html.parser``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections import Counter
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML (installed with jupyter-book) is needed to read _toc.yml")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SITE = ROOT / "_build" / "check" / "_build" / "html"
SOURCE_SUFFIXES = (".md", ".ipynb")

# sphinx-lesson directive -> CSS class of the admonition it renders (aliases included).
LESSON_DIRECTIVES = {
    "demo": "demo", "type-along": "type-along", "exercise": "exercise", "challenge": "exercise",
    "solution": "solution", "homework": "homework", "instructor-note": "instructor-note",
    "prerequisites": "prerequisites", "prereq": "prerequisites", "discussion": "discussion",
    "questions": "questions", "objectives": "objectives", "keypoints": "keypoints",
    "callout": "callout", "checklist": "checklist", "testimonial": "testimonial", "output": "output",
}
# Every lesson notebook opens with questions and objectives, has exercises and closes with key
# points. Its solutions are not directives but <details> blocks and hidden code cells, which
# read the same in Colab, Jupyter and on the site (tests/test_exercises.py, test_solutions_are_folded).
LESSON_REQUIRED = {"questions", "objectives", "exercise", "keypoints"}
# Directives whose body is code, not Markdown: fences inside them are not directives.
CODE_DIRECTIVES = {"code", "code-block", "code-cell", "sourcecode", "literalinclude", "raw", "math"}
GLOSSARY_TERMS = [
    "Augmentation", "Batch normalisation", "Confusion matrix", "Dice coefficient", "Fine-tuning",
    "Focal Tversky loss", "Global average pooling", "Learning-rate schedule", "Patch embedding",
    "RLE", "Self-attention", "Transfer learning", "Tversky index", "U-Net", "ResUNet",
]
REPOSITORY = "steel-defect-course/steel-defect-course"


# --------------------------------------------------------------------------- reading sources


def toc_docnames() -> list[str]:
    """The documents of ``_toc.yml`` in order: root, then every ``file`` of parts/chapters/sections."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in names]


def source_of(docname: str) -> Path | None:
    for suffix in SOURCE_SUFFIXES:
        path = ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    return None


def markdown_of(source: Path) -> str:
    """The Markdown text of a page: the file itself, or a notebook's Markdown cells."""
    text = source.read_text(encoding="utf-8")
    if source.suffix != ".ipynb":
        return text
    cells = json.loads(text)["cells"]
    return "\n\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                       for c in cells if c["cell_type"] == "markdown")


_FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*(.*?)\s*$")


def directive_uses(markdown: str) -> Counter:
    """Count the sphinx-lesson directives opened in MyST text (by CSS class), skipping code blocks.

    Examples
    --------
    >>> text = ":::{exercise} A\\n```python\\n:::{solution}\\n```\\n:::\\n````{prereq}\\nx\\n````\\n"
    >>> sorted(directive_uses(text).items())
    [('exercise', 1), ('prerequisites', 1)]
    """
    uses: Counter = Counter()
    code: tuple[str, int] | None = None  # (fence character, length) of the code block we are in
    open_directives: list[tuple[str, int]] = []  # backtick/tilde directive fences still open
    for line in markdown.splitlines():
        m = _FENCE.match(line)
        if not m:
            continue
        marker, info = m.groups()
        fence = (marker[0], len(marker))
        if code is not None:
            if fence[0] == code[0] and fence[1] >= code[1] and not info:
                code = None
            continue
        name = re.match(r"\{([\w-]+)\}", info)
        if name and name.group(1) in LESSON_DIRECTIVES:
            uses[LESSON_DIRECTIVES[name.group(1)]] += 1
        if marker[0] == ":":
            continue  # colon fences are always directives, and their body is Markdown
        if name and name.group(1) not in CODE_DIRECTIVES:
            open_directives.append(fence)
        elif not info and open_directives and fence[0] == open_directives[-1][0] \
                and fence[1] >= open_directives[-1][1]:
            open_directives.pop()
        else:
            code = fence
    return uses


# --------------------------------------------------------------------------- reading HTML


class Page(HTMLParser):
    """What the tests need from one HTML file: ids, links, class lists and visible text."""

    SKIP_TEXT = {"script", "style", "pre", "code", "textarea", "template"}

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (attribute, value) of every href and src
        self.resources: list[str] = []  # URLs the browser loads by itself: src, stylesheets, icons
        self.elements: list[tuple[str, dict]] = []  # (tag, attributes) of every element with a class
        self.details: list[dict] = []  # attributes of every <details> element
        self.text_parts: list[str] = []
        self.scripts: list[str] = []
        self._skip = 0
        self._in_script = False
        self.feed(path.read_text(encoding="utf-8"))
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag in ("a", "link", "area") and "href" in attrs:
            self.links.append(("href", attrs["href"]))
            if tag == "link" and attrs.get("rel", "") not in ("canonical", "next", "prev", "search", "index"):
                self.resources.append(attrs["href"])
        if tag in ("img", "script", "source", "iframe", "embed") and attrs.get("src"):
            self.links.append(("src", attrs["src"]))
            self.resources.append(attrs["src"])
        if "class" in attrs:
            self.elements.append((tag, attrs))
        if tag == "details":
            self.details.append(attrs)
        if tag in self.SKIP_TEXT:
            self._skip += 1
            self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag in self.SKIP_TEXT and self._skip:
            self._skip -= 1
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)
        elif not self._skip:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.text_parts)

    def with_classes(self, *classes: str) -> list[dict]:
        wanted = set(classes)
        return [attrs for _, attrs in self.elements if wanted <= set(attrs["class"].split())]


@lru_cache(maxsize=None)
def page(path: Path) -> Page:
    return Page(path)


def _newest_source_mtime() -> float:
    paths = [ROOT / "_config.yml", ROOT / "_toc.yml", *(ROOT / "book").glob("*.*")]
    paths += [p for name in toc_docnames() if (p := source_of(name))]
    return max(p.stat().st_mtime for p in paths if p.is_file())


@pytest.fixture(scope="session")
def site() -> Path:
    """The built site's HTML folder (see the module docstring for when tests are skipped)."""
    explicit = os.environ.get("SITE_DIR")
    folder = Path(explicit).resolve() if explicit else DEFAULT_SITE
    index = folder / "index.html"
    if explicit:
        if not index.is_file():
            pytest.fail(f"SITE_DIR={explicit}: no built site there ({index} is missing)")
        return folder
    if not index.is_file():
        pytest.skip(f"site not built at {folder}: run `make book-check` (or set SITE_DIR)")
    if index.stat().st_mtime < _newest_source_mtime():
        pytest.skip(f"site at {folder} is older than its sources: run `make book-check` (or set SITE_DIR)")
    return folder


def built_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts
                  and "_sources" not in p.relative_to(site).parts)


def toc_page(site: Path, docname: str) -> Path:
    """The HTML file of a ToC document; skips when a lesson notebook does not exist yet."""
    html = site / f"{docname}.html"
    if source_of(docname) is None and docname.startswith("notebooks/"):
        pytest.skip(f"{docname}.ipynb does not exist yet, so its page cannot be checked")
    assert source_of(docname) is not None, f"_toc.yml lists {docname}, but there is no {docname}.md or .ipynb"
    assert html.is_file(), f"{docname} is in _toc.yml but was not built: {html} is missing"
    return html


# --------------------------------------------------------------------------- tests without a site


def test_toc_lists_the_course():
    names = toc_docnames()
    assert names[0] == "book/intro"
    assert [n for n in names if n.startswith("notebooks/")] == [
        "notebooks/01_cnn_from_scratch", "notebooks/02_transfer_learning",
        "notebooks/03_vision_transformer", "notebooks/04_severstal_pipeline", "notebooks/05_inspection"]
    assert len(names) == len(set(names)), "a page is listed twice in _toc.yml"
    for name in names:
        if not name.startswith("notebooks/"):
            assert source_of(name) is not None, f"_toc.yml lists {name}, which does not exist"


def test_check_config_differs_only_in_execution(tmp_path):
    spec = importlib.util.spec_from_file_location("check_config", ROOT / "book" / "check_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = tmp_path / "check" / "_config.yml"
    assert module.main([str(ROOT / "_config.yml"), str(target)]) == 0
    original = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    derived = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert original["execute"]["execute_notebooks"] == "cache"
    assert derived["execute"].pop("execute_notebooks") == "off"
    original["execute"].pop("execute_notebooks")
    # Local extensions are found from the copy too: their folders become absolute.
    for name, folder in original["sphinx"]["local_extensions"].items():
        assert derived["sphinx"]["local_extensions"].pop(name) == str((ROOT / folder).resolve())
    original["sphinx"].pop("local_extensions"), derived["sphinx"].pop("local_extensions")
    assert derived == original


def test_config_is_offline_and_loads_sphinx_lesson():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    sphinx = config["sphinx"]
    assert "sphinx_lesson" in sphinx["extra_extensions"]
    assert "myst_parser" not in sphinx["extra_extensions"], "myst_nb already registers the Markdown parser"
    assert not sphinx["config"].get("intersphinx_mapping"), "remote inventories would need the network"
    assert config["repository"]["url"] == f"https://github.com/{REPOSITORY}"
    assert config["bibtex_bibfiles"] == ["book/references.bib"]


# --------------------------------------------------------------------------- tests of the built site


@pytest.mark.parametrize("docname", toc_docnames())
def test_toc_page_was_built(site, docname):
    html = page(toc_page(site, docname))
    assert html.with_classes("bd-article"), f"{docname}: the page has no article body"
    assert len(html.text.split()) > 20, f"{docname}: the page is (nearly) empty"


def test_index_redirects_to_the_root_page(site):
    assert "book/intro.html" in (site / "index.html").read_text(encoding="utf-8")


RAW_MARKUP = re.compile(r"(:{3,}|`{3,})\s*\{[\w-]+\}|\{[\w:-]+\}`[^`]+`")


@pytest.mark.parametrize("docname", toc_docnames())
def test_no_unrendered_markup(site, docname):
    """No directive fence (``:::{name}``) or role (``{name}`x` ``) left as text outside code."""
    found = [m.group(0) for m in RAW_MARKUP.finditer(page(toc_page(site, docname)).text)]
    assert not found, f"{docname}: unrendered MyST markup in the page text: {found[:5]}"


@pytest.mark.parametrize("docname", toc_docnames())
def test_lesson_directives_rendered(site, docname):
    """Every sphinx-lesson directive of the source is an admonition with its CSS class."""
    html = page(toc_page(site, docname))
    uses = directive_uses(markdown_of(source_of(docname)))
    for css, count in uses.items():
        rendered = html.with_classes("admonition", css)
        assert len(rendered) == count, (
            f"{docname}: {count} '{css}' directive(s) in the source, {len(rendered)} rendered")
    for solution in html.with_classes("admonition", "solution"):
        assert "dropdown" in solution["class"].split(), f"{docname}: a solution is not folded"
    if uses["solution"]:
        scripts = " ".join(html.scripts)
        assert re.search(r"togglebuttonSelector\s*=\s*'[^']*\.admonition\.dropdown", scripts), (
            f"{docname}: sphinx-togglebutton is not set up to fold solutions")
    if docname.startswith("notebooks/"):
        missing = LESSON_REQUIRED - set(uses)
        assert not missing, f"{docname}: lesson has no {', '.join(sorted(missing))} directive"


@pytest.mark.parametrize("docname", [n for n in toc_docnames() if n.startswith("notebooks/")])
def test_solutions_are_folded(site, docname):
    """Each solution of a lesson is on its page but folded: text in a closed <details>, code hidden."""
    html = page(toc_page(site, docname))
    cells = json.loads(source_of(docname).read_text(encoding="utf-8"))["cells"]
    solutions = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    texts = [c for c in solutions if c["cell_type"] == "markdown"]
    codes = [c for c in solutions if c["cell_type"] == "code"]
    assert solutions, f"{docname}: no solution cells"
    folded = [d for d in html.details if "open" not in d]
    assert len(folded) >= len(texts), f"{docname}: {len(texts)} solution texts, {len(folded)} closed <details>"
    assert not [d for d in html.details if "open" in d and "hide" not in d.get("class", "")], (
        f"{docname}: a <details> block is open by default")
    rendered = html.with_classes("cell", "tag_solution")
    assert len(rendered) == len(codes), f"{docname}: {len(codes)} solution code cells, {len(rendered)} on the page"
    assert all("tag_hide-cell" in attrs["class"].split() for attrs in rendered), (
        f"{docname}: a solution code cell, or its output, is shown open")


def test_intro_and_setup_use_lesson_directives(site):
    assert page(site / "book" / "intro.html").with_classes("admonition", "objectives")
    assert page(site / "book" / "intro.html").with_classes("admonition", "prerequisites")
    setup = page(site / "book" / "setup.html")
    for css in ("questions", "exercise", "solution", "keypoints"):
        assert setup.with_classes("admonition", css), f"setup page: no rendered {css}"


def test_internal_links_resolve(site):
    """Every relative link or resource of every page exists, and so does its anchor."""
    problems = []
    for html in built_pages(site):
        for attribute, url in page(html).links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith("//"):
                continue  # external (checked by nothing: the build must not need the network)
            path, fragment = urldefrag(url)
            path = unquote(urlsplit(path).path)
            if not path:
                target = html  # same-page anchor
                if not fragment:
                    continue  # "#" alone: a button of the theme
            else:
                target = (html.parent / path).resolve()
                if target.is_dir():
                    target = target / "index.html"
            where = f"{html.relative_to(site)}: {attribute}={url!r}"
            if not target.is_file():
                problems.append(f"{where}: {target} does not exist")
            elif fragment and target.suffix == ".html" and unquote(fragment) not in page(target).ids:
                problems.append(f"{where}: no anchor #{fragment} in {target.relative_to(site)}")
    assert not problems, f"{len(problems)} broken internal link(s):\n" + "\n".join(problems[:40])


def test_internal_links_point_inside_the_site(site):
    outside = []
    for html in built_pages(site):
        for _, url in page(html).links:
            if urlsplit(url).scheme or url.startswith("//") or not urldefrag(url)[0]:
                continue
            target = (html.parent / unquote(urlsplit(url).path)).resolve()
            if site.resolve() not in target.parents and target != site.resolve():
                outside.append(f"{html.relative_to(site)}: {url}")
    assert not outside, "links leaving the site folder:\n" + "\n".join(outside[:20])


def test_glossary_has_the_course_terms(site):
    glossary = page(site / "book" / "glossary.html")
    terms = {re.sub(r"[^a-z0-9]+", " ", i[len("term-"):].lower()).strip()
             for i in glossary.ids if i.startswith("term-")}
    missing = [t for t in GLOSSARY_TERMS if re.sub(r"[^a-z0-9]+", " ", t.lower()).strip() not in terms]
    assert not missing, f"glossary lacks: {missing}"


def _bib_titles() -> dict[str, str]:
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    titles = {}
    for entry in re.split(r"\n(?=@)", text):
        key = re.match(r"@\w+\{([^,\s]+),", entry.strip())
        title = re.search(r"^\s*title\s*=\s*\{(.*)\},?\s*$", entry, re.MULTILINE)
        if key and title:
            titles[key.group(1)] = title.group(1)
    return titles


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def test_bibliography_has_every_entry(site):
    titles = _bib_titles()
    assert len(titles) >= 13, f"only {len(titles)} entries with a title in references.bib"
    references = page(site / "book" / "references.html")
    entries = [a for a in references.with_classes("citation") if a.get("role") == "doc-biblioentry"]
    assert len(entries) == len(titles), f"{len(entries)} bibliography entries rendered, {len(titles)} in the .bib"
    text = _normalise(references.text)
    missing = [key for key, title in titles.items() if _normalise(re.sub(r"\\.|[{}]", "", title)) not in text]
    assert not missing, f"references page lacks the entries {missing}"


def test_citations_link_to_the_bibliography(site):
    intro = page(site / "book" / "intro.html")
    cited = [url for _, url in intro.links if urldefrag(url)[0].endswith("references.html") and "#id" in url]
    assert len(cited) >= 5, "the intro's citations do not link to the references page"


@pytest.mark.parametrize("docname", [n for n in toc_docnames() if n.startswith("notebooks/")])
def test_lesson_launch_buttons(site, docname):
    html = page(toc_page(site, docname))
    urls = [url for _, url in html.links]
    colab = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/{docname}.ipynb"
    assert colab in urls, f"{docname}: no Colab launch button ({colab})"
    assert any(u.startswith(f"https://mybinder.org/v2/gh/{REPOSITORY}/main") for u in urls), (
        f"{docname}: no Binder launch button")


def test_repository_and_issue_buttons(site):
    urls = [url for _, url in page(site / "book" / "intro.html").links]
    assert f"https://github.com/{REPOSITORY}" in urls
    assert any(u.startswith(f"https://github.com/{REPOSITORY}/issues") for u in urls)


def test_pages_load_nothing_remote_but_mathjax(site):
    """Styles, scripts, fonts and images come from the site itself (MathJax excepted)."""
    remote = []
    for html in built_pages(site):
        for url in page(html).resources:
            if (urlsplit(url).scheme or url.startswith("//")) and "mathjax" not in url.lower():
                remote.append(f"{html.relative_to(site)}: {url}")
    assert not remote, "remote resources:\n" + "\n".join(remote[:20])


def test_a_demo_or_fast_site_says_so_on_every_page(site):
    """The announcement bar (book/_ext/mode_banner.py) matches the mode the lessons decide in this environment."""
    import sys

    from defectlib.config import NEEDS, settings

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from mode_banner import announcement

    run = settings(needs=NEEDS)
    expected = announcement(run.fast, run.demo_reason)
    for docname in toc_docnames():
        bar = page(toc_page(site, docname)).with_classes("bd-header-announcement")
        if expected:
            assert bar, f"{docname}: no announcement bar on a {'demo' if run.demo else 'fast'} site"
        else:
            assert not bar, f"{docname}: an announcement bar on a full site"
