"""Commands the pages give a user, run as the pages give them (the ones that need no internet and little time).

`make test` itself runs lessons 2-4 with book/instructors.md's offline recipe (see the Makefile's
`notebooks` target); this file runs the setup page's check of the settings.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_page_command() -> list[str]:
    """The settings check of book/setup.md, 'Check your setup', as an argument list (without its variable)."""
    text = (ROOT / "book" / "setup.md").read_text()
    line = re.search(r"^DEFECTLIB_FAST=1 (python -c .*)$", text, re.M).group(1)
    return [sys.executable, *shlex.split(line)[1:]]


def run(fast: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEFECTLIB_")}
    return subprocess.run(setup_page_command(), env={**env, "DEFECTLIB_FAST": fast}, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_the_setup_check_prints_what_its_solution_says():
    done = run("1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["mode: FAST (small data, few epochs: numbers are not meaningful)", "seed: 42"]
    assert "NEU folder: (not set)" in lines and "offline: False" in lines


def test_a_bad_flag_stops_with_the_message_the_solution_quotes():
    done = run("maybe")
    assert done.returncode != 0
    assert "ValueError: DEFECTLIB_FAST='maybe': expected one of 1/0, true/false, yes/no, on/off" in done.stderr
