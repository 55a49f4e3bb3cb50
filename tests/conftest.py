"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder: ``../shared/data`` beside the repository, or ``$DEFECTLIB_SHARED_DATA``.

    Tests that use it are skipped when it is absent.
    """
    folder = Path(os.environ.get("DEFECTLIB_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not folder.is_dir():
        pytest.skip(f"reference data not found at {folder} (set DEFECTLIB_SHARED_DATA)")
    return folder


@pytest.fixture(autouse=True)
def no_lesson_settings():
    """Each test starts and ends without a lesson's decided settings (defectlib.config.start_lesson)."""
    from defectlib import config

    config.use(None)
    yield
    config.use(None)
