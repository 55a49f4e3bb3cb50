"""Every exercise of every lesson can be attempted before its solution is seen.

The convention (CONTRIBUTING.md, "Exercises"), checked on the notebook JSON as Colab,
JupyterLab and the site read it:

1. the question is a Markdown cell with a ``:::{exercise}`` box and cell metadata
   ``"exercise": {"check": NAME}``, NAME being a function of ``defectlib.exercises`` (or
   ``null`` where no code can check the answer, for questions to think about);
2. the next cell is the attempt cell: code, tagged ``attempt``, starting with
   ``# Your attempt``, calling ``exercises.NAME(`` when a check is declared;
3. then the solution: Markdown cells tagged ``solution`` wrapped in ``<details>`` (folded
   in Colab, Jupyter and on the site) and code cells tagged ``solution`` that are hidden
   everywhere: ``#@title`` with ``cellView: form`` (Colab), ``jupyter.source_hidden``
   (JupyterLab/Notebook 7, with ``outputs_hidden``: the output gives the answer away too) and the
   ``hide-cell`` tag (the site folds input and output). nbval still runs them;
4. no ``:::{solution}`` box (Colab would show it as plain text), and no name the attempt
   cell assigns is assigned again by a solution cell ("Run all" never overwrites a
   student's work).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from defectlib import exercises

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        cell["text"] = "".join(cell["source"])
        cell["tags"] = cell.get("metadata", {}).get("tags", [])
    return cells


def _is_exercise(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and ":::{exercise}" in cell["text"]


def _assigned(source: str) -> set[str]:
    """Names a code cell binds at its top level (assignments, defs, imports, for targets)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    names: set[str] = set()
    for node in ast.parse("\n".join(lines)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def exercise_problems(cells: list[dict]) -> list[str]:
    """Everything in one notebook's cells that breaks the convention above (empty: all good)."""
    problems = []
    for i, cell in enumerate(cells):
        if ":::{solution}" in cell["text"]:
            problems.append(f"cell {i}: a :::{{solution}} box is shown as plain text in Colab; use <details>")
    attempt_names: set[str] = set()
    solution_names: dict[str, int] = {}
    starts = [i for i, cell in enumerate(cells) if _is_exercise(cell)]
    for k, start in enumerate(starts):
        cell = cells[start]
        title = cell["text"].split(":::{exercise}", 1)[1].splitlines()[0].strip() or f"cell {start}"
        where = f"exercise {title!r} (cell {start})"
        meta = cell.get("metadata", {}).get("exercise")
        if not isinstance(meta, dict) or "check" not in meta:
            problems.append(f"{where}: no 'exercise': {{'check': ...}} in its cell metadata")
            meta = {"check": None}
        check = meta["check"]
        if check is not None and not callable(getattr(exercises, check, None)):
            problems.append(f"{where}: declares check {check!r}, which defectlib.exercises does not have")
        attempt = cells[start + 1] if start + 1 < len(cells) else None
        if (attempt is None or attempt["cell_type"] != "code" or "attempt" not in attempt["tags"]
                or not attempt["text"].startswith("# Your attempt")):
            problems.append(f"{where}: the next cell is not an attempt cell (code, tag 'attempt', '# Your attempt')")
        else:
            attempt_names |= _assigned(attempt["text"])
            if check is not None and f"exercises.{check}(" not in attempt["text"]:
                problems.append(f"{where}: its attempt cell does not call exercises.{check}(...)")
        end = starts[k + 1] if k + 1 < len(starts) else len(cells)
        solutions = [(j, c) for j, c in enumerate(cells[start + 2:end], start + 2) if "solution" in c["tags"]]
        if not solutions:
            problems.append(f"{where}: no cell tagged 'solution' after the attempt cell")
        for j, sol in solutions:
            if sol["cell_type"] == "markdown":
                text = sol["text"].strip()
                if not (text.startswith("<details") and text.endswith("</details>")):
                    problems.append(f"{where}: solution text in cell {j} is not folded in <details>...</details>")
            else:
                meta = sol.get("metadata", {})
                jupyter = meta.get("jupyter", {})
                if not (jupyter.get("source_hidden") and jupyter.get("outputs_hidden") and meta.get("cellView") == "form"
                        and "hide-cell" in sol["tags"] and sol["text"].startswith("#@title")):
                    problems.append(f"{where}: solution code in cell {j} is visible somewhere (needs '#@title', "
                                    "cellView 'form', jupyter.source_hidden and outputs_hidden, and the 'hide-cell' "
                                    "tag, which folds its output on the site too)")
                for name in _assigned(sol["text"]):
                    solution_names.setdefault(name, j)
    for i, cell in enumerate(cells):
        if "solution" in cell["tags"] and not any(s < i for s in starts):
            problems.append(f"cell {i}: tagged 'solution' before any exercise")
    for name in sorted(attempt_names & set(solution_names)):
        problems.append(f"solution cell {solution_names[name]} assigns {name!r}, which an attempt cell "
                        "defines: 'Run all' would overwrite the student's work")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_can_be_attempted_before_its_solution_is_seen(path):
    cells = _cells(path)
    assert any(_is_exercise(c) for c in cells), f"{path.name} has no exercise"
    assert exercise_problems(cells) == []


def _md(text, **meta):
    return {"cell_type": "markdown", "text": text, "tags": meta.pop("tags", []), "metadata": meta}


def _code(text, tags=(), **meta):
    return {"cell_type": "code", "text": text, "tags": list(tags), "metadata": meta}


GOOD = [
    _md(":::{exercise} Count\nHow many?\n:::", exercise={"check": "report"}),
    _code("# Your attempt\nmy_count = None\nexercises.report(my_count, hint)", tags=["attempt"]),
    _md("<details><summary>Solution</summary>\n\nTwo.\n\n</details>", tags=["solution"]),
    _code("#@title Solution code\nsolution_count = 2", tags=["solution", "hide-cell"], cellView="form",
          jupyter={"source_hidden": True, "outputs_hidden": True}),
]


def test_the_convention_checker_accepts_a_well_formed_exercise():
    assert exercise_problems(GOOD) == []


@pytest.mark.parametrize("break_it, expected", [
    (lambda c: c.pop(1), "not an attempt cell"),
    (lambda c: c[0]["metadata"].update(exercise={"check": "no_such_check"}), "does not have"),
    (lambda c: c[1].update(text="# Your attempt\nmy_count = None"), "does not call exercises.report"),
    (lambda c: c[2].update(text="Two."), "not folded"),
    (lambda c: c[3]["metadata"].update(cellView="code"), "visible somewhere"),
    (lambda c: c[3].update(tags=["solution"]), "visible somewhere"),
    (lambda c: c[3].update(text="#@title Solution code\nmy_count = 2"), "overwrite the student's work"),
    (lambda c: [c.pop(3), c.pop(2)], "no cell tagged 'solution'"),
    (lambda c: c.append(_md(":::{solution}\nTwo.\n:::")), "plain text in Colab"),
])
def test_the_convention_checker_finds_each_kind_of_problem(break_it, expected):
    cells = json.loads(json.dumps(GOOD))
    break_it(cells)
    assert any(expected in problem for problem in exercise_problems(cells)), exercise_problems(cells)
