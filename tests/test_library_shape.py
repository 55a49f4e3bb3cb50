"""The shape CONTRIBUTING.md asks of defectlib: small modules, short functions, a map that lists every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import defectlib

LIBRARY = Path(defectlib.__file__).parent
MODULES = sorted(p for p in LIBRARY.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_no_module_over_450_lines_and_no_function_over_60(path: Path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 450, f"{path.name}: {len(text.splitlines())} lines; split it by concern"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60]
    assert not long, f"{path.name}: functions over 60 lines: {long}"


def test_the_package_map_names_every_module_once():
    listed = [line.split()[0] for line in defectlib.__doc__.splitlines() if line.startswith("    ")]
    assert sorted(listed) == [p.stem for p in MODULES]
