"""Shared bits of the benchmark scripts: their command line, where the reference data is, a timer, NEU helpers."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# TensorFlow's oneDNN CPU kernels, as the notebooks ask for them (the setup page, 'Speed on a CPU'); read once, when
# TensorFlow loads, so before any script imports it. TF_ENABLE_ONEDNN_OPTS=0 measures without them.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def shared_data() -> Path:
    """``$DEFECTLIB_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("DEFECTLIB_SHARED_DATA") or REPO.parent / "shared" / "data")


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" to an option's help unless the help already says what the default is."""

    def _get_help_string(self, action):
        return action.help if "default" in (action.help or "") else super()._get_help_string(action)


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """The parser of a benchmark's settings, described by the first line of its docstring; ``--help`` shows defaults."""
    return argparse.ArgumentParser(description=doc.splitlines()[0], formatter_class=_DefaultsHelpFormatter)


def comma_separated(cast=str):
    """An argparse ``type``: ``"42,43, 44"`` -> ``[42, 43, 44]`` with ``cast=int``; empty items are dropped.

    Examples
    --------
    >>> comma_separated(int)("42,43, 44,")
    [42, 43, 44]
    """
    def parse(text: str) -> list:
        return [cast(item.strip()) for item in text.split(",") if item.strip()]

    parse.__name__ = f"comma-separated {cast.__name__}"  # argparse names the type so in its error messages
    return parse


def neu_root() -> Path:
    """``$DEFECTLIB_NEU_DIR``, else ``NEU-DET`` in the shared data; exit 0 with a message when it is absent."""
    return require(Path(os.environ.get("DEFECTLIB_NEU_DIR") or shared_data() / "NEU-DET"))


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
    return (f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min), "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}")


def with_validation_in_train(data):
    """NEU ``data`` (after ``with_test_split``) with its validation images moved into training.

    The final fit: once every choice has been made on validation, train once more on
    every labelled image outside the test split (1,440 for NEU).
    """
    import dataclasses

    files = data.files.copy()
    files.loc[files["split"] == "validation", "split"] = "train"
    return dataclasses.replace(data, files=files)


def flip_accuracy(model, dataset) -> float:
    """Test-time augmentation: accuracy of the mean probabilities over the image and its three flips."""
    import numpy as np

    from defectlib.compare import predict_dataset

    images, y_true, probabilities = predict_dataset(model, dataset)
    for flipped in (images[:, :, ::-1], images[:, ::-1], images[:, ::-1, ::-1]):
        probabilities = probabilities + model.predict(np.ascontiguousarray(flipped), batch_size=64, verbose=0)
    return float((probabilities.argmax(axis=1) == y_true).mean())
