"""Write the definitions the lessons mark ``#@save`` into the ``defectlib`` modules they belong to.

A lesson teaches a model on its page, and the page is its only source, as in d2l: a line
``#@save`` right above a top-level ``def``, ``class`` or assignment (decorators included)
marks it for the library. ``make lib`` runs this script, which writes each notebook's marked
definitions, in page order, into one generated module (:data:`MODULES`), with the imports of
the notebook that the code uses. ``--check`` writes nothing and fails when a generated module
differs from what the notebooks give (``tests/test_make_lib.py`` runs it).

Examples
--------
>>> cells = ["import keras\\nx = 1", "#@save\\ndef f():\\n    return keras.ops.ones(2)\\n\\n\\ny = f()"]
>>> print(marked_code(cells)[0])
def f():
    return keras.ops.ones(2)
>>> imports_used(cells, marked_code(cells))
['import keras']
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "#@save"
#: notebook -> (module, what it holds)
MODULES = {
    "01_cnn_from_scratch.ipynb": ("cnn", "Lesson 1's models: the seed's LeNet, the refined CNN and their schedules."),
    "02_transfer_learning.ipynb": ("transfer", "Lesson 2's transfer learning: an ImageNet base with a new head, "
                                               "cached features, fine-tuning."),
    "03_vision_transformer.ipynb": ("vit", "Lesson 3's vision transformers: patch and position embeddings, "
                                           "blocks, the ViTs, the hybrid, training above a cut."),
    "04_severstal_pipeline.ipynb": ("segmentation", "Lesson 4's networks: the ResNet50 defect gate, the ResUNet "
                                                    "and the small gate."),
    "05_inspection.ipynb": ("interpret", "Lesson 5's interpretation: class activation maps, Grad-CAM and "
                                         "temperature scaling."),
}


def code_cells(notebook: Path) -> list[str]:
    """The source of each code cell of ``notebook``."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def marked_code(cells: list[str]) -> list[str]:
    """The source of every top-level statement right below a ``#@save`` line, in order."""
    blocks = []
    for source in cells:
        lines = source.splitlines()
        marks = {number for number, line in enumerate(lines, start=1) if line.strip() == MARK}
        if not marks:
            continue
        for node in ast.parse(source).body:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            if first - 1 in marks:
                blocks.append("\n".join(lines[first - 1:node.end_lineno]))
                marks.discard(first - 1)
        if marks:
            raise ValueError(f"{MARK} on line {sorted(marks)[0]} of a cell is not right above a top-level "
                             f"statement:\n{source}")
    return blocks


def imports_used(cells: list[str], blocks: list[str]) -> list[str]:
    """The notebook's top-level import statements, reduced to the names ``blocks`` use."""
    used = {node.id for block in blocks for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Name)}
    lines = []
    for source in cells:
        for node in ast.parse(source).body:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = [alias for alias in node.names if (alias.asname or alias.name.split(".")[0]) in used]
            if names:
                node = type(node)(**{**node.__dict__, "names": names})
                lines.append(ast.unparse(node))
    return list(dict.fromkeys(lines))


def module_text(notebook: Path) -> str:
    """The generated module of ``notebook``."""
    module, summary = MODULES[notebook.name]
    cells = code_cells(notebook)
    blocks = marked_code(cells)
    if not blocks:
        raise ValueError(f"{notebook.name}: no {MARK} definitions")
    header = (f'"""{summary}\n\nGenerated from notebooks/{notebook.name} by `make lib` (tools/make_lib.py): '
              f"do not edit.\nChange the cells marked {MARK} in the notebook, then run `make lib`.\n\"\"\"\n\n")
    return "\n\n\n".join([header + "\n".join(imports_used(cells, blocks)), *blocks]) + "\n"


def undefined_names(text: str, filename: str) -> list[str]:
    """pyflakes' messages about names a generated module uses but does not define or import."""
    from pyflakes.api import check
    from pyflakes.reporter import Reporter

    class Collect(Reporter):
        def __init__(self):
            self.messages = []

        def flake(self, message):
            if "undefined name" in str(message):
                self.messages.append(str(message))

        def syntaxError(self, *args):  # noqa: N802 - pyflakes' name
            self.messages.append(f"syntax error: {args}")

    reporter = Collect()
    check(text, filename, reporter)
    return reporter.messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail if a module is out of date")
    args = parser.parse_args(argv)
    stale, problems = [], []
    for name, (module, _) in MODULES.items():
        path = ROOT / "defectlib" / f"{module}.py"
        text = module_text(ROOT / "notebooks" / name)
        problems += undefined_names(text, str(path.relative_to(ROOT)))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if problems:
        print("The marked definitions use names the notebook neither defines with #@save nor imports:",
              *problems, sep="\n  ", file=sys.stderr)
        return 1
    if stale and args.check:
        print("Out of date (run `make lib`):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("written:" if stale else "up to date:", *(stale or [m for m, _ in MODULES.values()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
