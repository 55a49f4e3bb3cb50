"""The runtime install: every module the notebooks (and defectlib) import is declared, and the install cell.

Run as a script, this file is the import check of ``make test-colab``: in an environment with
only the runtime install (Colab's pinned packages and ``pip install`` of the course, no test or
book extras) it imports every module the notebooks and ``defectlib`` import, found with ``ast``
(so a new import is covered without editing this file)::

    python tests/test_install.py
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def code_cells(notebook: Path) -> list[str]:
    """The code cells of a notebook, with IPython's ``%magic`` and ``!shell`` lines removed."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in cells if c["cell_type"] == "code"]
    return ["\n".join(line for line in s.splitlines() if not line.lstrip().startswith(("%", "!")))
            for s in sources]


def imported_modules(sources: list[str]) -> set[str]:
    """Absolute module names imported anywhere in ``sources`` (function bodies included)."""
    names = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


def course_sources() -> list[str]:
    """The notebooks' code cells and the source of every ``defectlib`` module."""
    sources = [cell for nb in NOTEBOOKS for cell in code_cells(nb)]
    return sources + [p.read_text(encoding="utf-8") for p in sorted((ROOT / "defectlib").glob("*.py"))]


def third_party(modules: set[str]) -> set[str]:
    """Top-level names of ``modules`` that are neither the standard library nor defectlib."""
    tops = {name.split(".")[0] for name in modules}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in ("defectlib", "__future__")}


def uses_dataframe_style() -> bool:
    """Whether a notebook renders a ``DataFrame.style`` (pandas then needs jinja2, which it does not require)."""
    return any(re.search(r"\.style\b", cell) for nb in NOTEBOOKS for cell in code_cells(nb))


# --------------------------------------------------------------------------- tests (make test)


def _declared() -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {re.split(r"[ <>=!~;\[]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in project["dependencies"]}


def test_the_collector_finds_imports_everywhere():
    found = imported_modules(["import a.b as c\nfrom d.e import f\nfrom . import g\ndef h():\n    import i\n"])
    assert found == {"a.b", "d.e", "i"}
    assert {"keras", "numpy", "pandas", "sklearn.metrics", "defectlib.config"} <= imported_modules(course_sources())


def test_every_third_party_import_is_a_declared_dependency():
    from importlib.metadata import packages_distributions

    distributions = packages_distributions()
    declared = _declared()
    undeclared = {}
    for module in sorted(third_party(imported_modules(course_sources()))):
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not owners & declared:
            undeclared[module] = sorted(owners) or "not installed"
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_dataframe_style_has_its_jinja2():
    assert uses_dataframe_style() <= ("jinja2" in _declared())


def test_every_notebook_has_the_same_install_cell():
    first = {nb.name: code_cells(nb)[0] for nb in NOTEBOOKS}
    assert len(set(first.values())) == 1, f"install cells differ: {sorted(first)}"
    assert "git+{REPOSITORY}" in next(iter(first.values()))


def test_install_cell_explains_a_failed_pip(monkeypatch, capsys):
    import importlib.util

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from run_install_cell import install_cell, with_repository
    finally:
        sys.path.remove(str(ROOT / "tools"))
    url = "file:///nonexistent/steel-defect-course"
    code = with_repository(install_cell(NOTEBOOKS[0]), url)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)  # as in Colab: not installed
    try:
        exec(compile(code, "install cell", "exec"), {})
    except SystemExit as stop:
        message = str(stop)
    else:
        raise AssertionError("the install cell did not stop on a failed pip install")
    assert url in message and "fork" in message and f"pip install git+{url}" in message
    assert "nonexistent" in capsys.readouterr().out  # pip's own error is shown above the message


# --------------------------------------------------------------------------- the import check (script)


def main() -> int:
    """Import every third-party module and defectlib module the course imports; render a Styler."""
    import importlib

    imported = imported_modules(course_sources())
    outside = third_party(imported)
    modules = sorted(m for m in imported if m.split(".")[0] in outside or m.split(".")[0] == "defectlib")
    for name in modules:
        importlib.import_module(name)
    print(f"imported {len(modules)} modules: {', '.join(modules)}")
    if uses_dataframe_style():
        import pandas as pd

        pd.DataFrame({"a": [1.0]}).style.format("{:.1f}").to_html()
        print("DataFrame.style renders (jinja2 is installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
