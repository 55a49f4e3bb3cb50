"""benchmarks/lesson_times.py's bookkeeping: the needs it reads, the cell times it sums, the budgets it scales."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def lesson_times():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("lesson_times", BENCHMARKS / "lesson_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCHMARKS))


def test_every_lesson_has_a_budget_and_names_its_needs(lesson_times):
    assert [p.name[:2] for p in lesson_times.LESSONS] == sorted(lesson_times.BUDGET_MINUTES)
    needs = {p.name[:2]: lesson_times.lesson_needs(p) for p in lesson_times.LESSONS}
    assert needs["01"] == ("neu",) and "imagenet" in needs["02"] and "severstal" in needs["04"]


def test_cell_times_come_from_nbclient_timestamps(lesson_times):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("fit()\nmore()"), nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("quick()"), nbformat.v4.new_code_cell("")])
    notebook.cells[0].metadata.execution = {"iopub.execute_input": "2026-12-06T07:00:00.000000Z",
                                            "shell.execute_reply": "2026-12-06T07:01:30.500000Z"}
    notebook.cells[2].metadata.execution = {"iopub.execute_input": "2026-12-06T07:01:31Z",
                                            "shell.execute_reply": "2026-12-06T07:01:33Z"}
    assert lesson_times.cell_seconds(notebook.cells[0]) == 90.5
    assert lesson_times.cell_seconds(notebook.cells[3]) == 0.0          # never ran: no timestamps
    assert lesson_times.slowest_cells(notebook, 2) == [(0, 90.5, "fit()"), (2, 2.0, "quick()")]


def test_budgets_scale_with_the_seed_lenet_epoch(lesson_times, capsys):
    rows = [{"name": "01_cnn_from_scratch", "seconds": 500.0, "error": "", "slowest": [], "load": "x"},
            {"name": "05_inspection", "skipped": "no full run here: no weights"}]
    lesson_times.report(rows, scale=0.5)                                 # a CPU twice as fast: 10 minutes
    out = capsys.readouterr().out
    assert "8.3 m       10.0 m  within" in out and "skipped" in out
    lesson_times.report(rows, scale=0.25)
    assert "OVER" in capsys.readouterr().out
