"""The one exception type for problems with input data."""

from __future__ import annotations


class DataError(ValueError):
    """Raised when input data is missing, malformed or inconsistent; the message names the file, row or value.

    >>> raise DataError("train.csv, row 3: ClassId 7 is not one of 1, 2, 3, 4")
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: train.csv, row 3: ClassId 7 is not one of 1, 2, 3, 4
    """


def raise_all(problems: list[str], what: str) -> None:
    """Raise one :class:`DataError` listing every problem, one per line; do nothing if there are none.

    >>> raise_all(["a.jpg: empty file (0 bytes)", "b.jpg: file not found"], "Image files")
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: Image files: 2 problem(s); fix them and try again:
      a.jpg: empty file (0 bytes)
      b.jpg: file not found
    """
    if problems:
        raise DataError(f"{what}: {len(problems)} problem(s); fix them and try again:\n  " + "\n  ".join(problems))
