"""Shared bits of the benchmark scripts: where the reference data is, and a timer."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def shared_data() -> Path:
    """``$DEFECTLIB_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("DEFECTLIB_SHARED_DATA") or REPO.parent / "shared" / "data")


def require(path: Path) -> Path:
    """Return ``path``, or exit 0 with a message when the reference data is absent."""
    if not path.exists():
        print(f"SKIPPED: reference data not found at {path} (set DEFECTLIB_SHARED_DATA)")
        sys.exit(0)
    return path


def timed(fn, *args, clock=time.perf_counter, **kwargs) -> tuple[float, object]:
    """Seconds taken by one call (wall clock, or ``clock=time.process_time`` for CPU time), and its result."""
    start = clock()
    result = fn(*args, **kwargs)
    return clock() - start, result


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"
