"""The one exception type for problems with input data."""

from __future__ import annotations


class DataError(ValueError):
    """Raised when input data is missing, malformed or inconsistent.

    The message always names the file, row or value at fault and says what is
    wrong, so a student can fix the data rather than debug the library.

    Examples
    --------
    >>> raise DataError("train.csv, row 3: ClassId 7 is not one of 1, 2, 3, 4")
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: train.csv, row 3: ClassId 7 is not one of 1, 2, 3, 4
    """
