"""Run-length encoding of masks in the Kaggle (Severstal) convention.

Pixels are numbered from 1, top to bottom, then left to right; ``"1 3 10 2"`` sets pixels 1-3 and 10-11.
An empty string or NaN is an empty mask.
"""

from __future__ import annotations

import math
import re

import numpy as np

SEVERSTAL_SHAPE = (256, 1600)
"""Height and width of a Severstal image."""

_MAX_DIGITS = 18  # two 18-digit numbers still add up without overflowing int64
_TOKEN = re.compile(r"-?[0-9]+")


def _raise_bad_token(tokens: list[str], shape: tuple[int, int]) -> None:
    """Raise a ValueError naming the first token that is not ASCII digits, or too large."""
    for token in tokens:
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"RLE value {token!r} is not a whole number (expected ASCII digits 0-9)")
        if abs(int(token)) >= 10**_MAX_DIGITS:
            raise ValueError(f"RLE value {token} is too large: the image has only {shape[0] * shape[1]} pixels")


def _is_empty(rle: object) -> bool:
    if rle is None:
        return True
    if isinstance(rle, float) and math.isnan(rle):
        return True
    return isinstance(rle, str) and not rle.strip()


def parse_rle(rle: str | float | None, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check an encoding; return 0-based ``starts`` and ``lengths`` (ValueError naming any problem).

    >>> parse_rle("1 3 10 2", (4, 4))
    (array([0, 9]), array([3, 2]))
    """
    if _is_empty(rle):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not isinstance(rle, str):
        raise ValueError(f"RLE must be a string of 'start length' pairs, got {type(rle).__name__} {rle!r}")
    tokens = rle.split()
    try:  # the fast path; int() would also take non-ASCII digits, '+' and '_', so those go the slow way
        values = None if not rle.isascii() or "_" in rle or "+" in rle else np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        values = None
    if values is None or (np.abs(values) >= 10**_MAX_DIGITS).any():
        _raise_bad_token(tokens, shape)
        values = np.array(tokens, dtype=np.int64)  # every token checked (say, split by a non-ASCII space)
    if len(tokens) % 2:
        raise ValueError(f"RLE has an odd number of values ({len(tokens)}): it must be 'start length' pairs")
    starts, lengths = values[0::2], values[1::2]
    size = shape[0] * shape[1]
    problems = [
        (starts < 1, lambda i: f"start {starts[i]} is below 1 (pixels are numbered from 1)"),
        (lengths <= 0, lambda i: f"length {lengths[i]} is not positive"),
        (starts + lengths - 1 > size, lambda i: f"run ends at pixel {starts[i] + lengths[i] - 1}, past the image's {size} pixels ({shape[0]}x{shape[1]})"),
    ]
    for bad, message in problems:
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"RLE run {i + 1} (start {starts[i]}): {message(i)}")
    ends = starts + lengths
    if len(starts) > 1:
        unsorted = starts[1:] < starts[:-1]
        if unsorted.any():
            i = int(np.argmax(unsorted)) + 1
            raise ValueError(f"RLE run {i + 1} (start {starts[i]}): starts before run {i} (start {starts[i - 1]}); runs must be sorted")
        overlap = starts[1:] < ends[:-1]
        if overlap.any():
            i = int(np.argmax(overlap)) + 1
            raise ValueError(f"RLE run {i + 1} (start {starts[i]}): overlaps run {i}, which ends at pixel {ends[i - 1] - 1}")
    return starts - 1, lengths


def rle_decode(rle: str | float | None, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """Decode one encoding into a ``uint8`` mask of ``shape`` (height, width) with values 0/1.

    >>> rle_decode("1 3 10 2", (4, 4))
    array([[1, 0, 0, 0],
           [1, 0, 1, 0],
           [1, 0, 1, 0],
           [0, 0, 0, 0]], dtype=uint8)
    """
    starts, lengths = parse_rle(rle, shape)
    height, width = shape
    pixels = np.zeros(height * width, dtype=np.uint8)
    for start, end in zip(starts.tolist(), (starts + lengths).tolist()):
        pixels[start:end] = 1
    return pixels.reshape(width, height).T


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (any nonzero pixel is set) as a string; an empty mask gives ``""``.

    >>> m = rle_decode("1 3 10 2", (4, 4))
    >>> rle_encode(m)
    '1 3 10 2'
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask (height, width), got shape {mask.shape}")
    if not mask.any():
        return ""
    pixels = np.zeros(mask.size + 2, dtype=np.int8)
    pixels[1:-1] = mask.T.ravel() != 0
    changes = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    changes[1::2] -= changes[0::2]
    return " ".join(map(str, changes.tolist()))


def rles_to_masks(rles: list[str | float | None], shape: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """Decode one encoding per class into a ``(height, width, n_classes)`` stack.

    >>> rles_to_masks(["1 2", "", None, "3 1"], (2, 2)).shape
    (2, 2, 4)
    """
    return np.stack([rle_decode(r, shape) for r in rles], axis=-1)


def masks_to_rles(masks: np.ndarray) -> list[str]:
    """Encode a ``(height, width, n_classes)`` stack into one string per class.

    >>> masks_to_rles(rles_to_masks(["1 2", "", "", "3 1"], (2, 2)))
    ['1 2', '', '', '3 1']
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks_to_rles expects (height, width, classes), got shape {masks.shape}")
    return [rle_encode(masks[..., k]) for k in range(masks.shape[-1])]
