"""The lessons' pages are the only source of what they teach: the generated defectlib modules match them."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import make_lib  # noqa: E402


def test_the_generated_modules_are_up_to_date():
    assert make_lib.main(["--check"]) == 0, "run `make lib`"


@pytest.mark.parametrize("notebook", sorted(make_lib.MODULES))
def test_each_generated_module_says_where_it_comes_from_and_holds_the_marked_definitions(notebook):
    module_name = make_lib.MODULES[notebook][0]
    text = (ROOT / "defectlib" / f"{module_name}.py").read_text()
    assert f"Generated from notebooks/{notebook}" in text and "do not edit" in text
    module = importlib.import_module(f"defectlib.{module_name}")
    cells = make_lib.code_cells(ROOT / "notebooks" / notebook)
    names = [line.split()[1].split("(")[0].split(":")[0] for block in make_lib.marked_code(cells)
             for line in block.splitlines() if line.startswith(("def ", "class "))]
    assert names and all(hasattr(module, name) for name in names)


def test_no_notebook_checks_its_page_against_the_library():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "code")
        for module in ("cnn", "transfer", "segmentation"):
            assert f"{module}.{'get_config'}" not in code
            assert f"== {module}." not in code and f"=={module}." not in code, path.name


def test_a_mark_must_sit_on_a_definition():
    with pytest.raises(ValueError, match="not right above"):
        make_lib.marked_code(["x = 1\n#@save\n\nif x:\n    pass\n    #@save\n"])


def test_a_name_the_notebook_does_not_save_is_reported(tmp_path):
    text = "def f():\n    return IMAGE_SIZE\n"
    assert make_lib.undefined_names(text, "m.py") == ["m.py:2:12: undefined name 'IMAGE_SIZE'"]
