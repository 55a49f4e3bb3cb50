"""Kaggle's submission table for Severstal: build, write, read and score it (mean Dice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from defectlib.errors import DataError
from defectlib.losses import dice_per_pair
from defectlib.rle import SEVERSTAL_SHAPE, rle_decode, rle_encode

CLASSES = (1, 2, 3, 4)
SUBMISSION_COLUMNS = ["ImageId", "ClassId", "EncodedPixels"]


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    return table[SUBMISSION_COLUMNS].astype({"ImageId": str, "ClassId": int, "EncodedPixels": str})


def submission_table(image_ids: Sequence[str], masks: Sequence[np.ndarray] | np.ndarray,
                     include_empty: bool = False) -> pd.DataFrame:
    """The submission rows of ``(height, width, classes)`` masks; empty masks get a row only if ``include_empty``.

    >>> m = np.zeros((2, 2, 4), "uint8"); m[0, :, 2] = 1
    >>> submission_table(["a.jpg"], [m])
      ImageId  ClassId EncodedPixels
    0   a.jpg        3       1 1 3 1
    """
    if len(image_ids) != len(masks):
        raise ValueError(f"{len(image_ids)} image ids but {len(masks)} mask stacks")
    rows = [(image_id, k + 1, rle) for image_id, stack in zip(image_ids, masks) for k in range(np.shape(stack)[-1])
            if (rle := rle_encode(stack[..., k])) or include_empty]
    return _tidy(pd.DataFrame(rows, columns=SUBMISSION_COLUMNS))


def merge_tables(frames: Sequence[pd.DataFrame], image_ids: Sequence[str], include_empty: bool = False) -> pd.DataFrame:
    """One sorted submission table from parts; ``include_empty`` adds empty rows for images no part covers.

    >>> part = pd.DataFrame({"ImageId": ["b.jpg"], "ClassId": [3], "EncodedPixels": ["1 5"]})
    >>> merge_tables([part], ["a.jpg", "b.jpg"], include_empty=True)["ImageId"].tolist()
    ['a.jpg', 'a.jpg', 'a.jpg', 'a.jpg', 'b.jpg']
    """
    frames = list(frames)
    if include_empty:
        present = {i for frame in frames for i in frame["ImageId"]}
        frames.append(pd.DataFrame([(i, c, "") for i in image_ids if i not in present for c in CLASSES],
                                   columns=SUBMISSION_COLUMNS))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUBMISSION_COLUMNS)
    return _tidy(table).sort_values(["ImageId", "ClassId"], kind="stable").reset_index(drop=True)


def write_submission(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a submission table to CSV (columns ``ImageId,ClassId,EncodedPixels``, no index).

    >>> import tempfile
    >>> table = pd.DataFrame({"ImageId": ["a.jpg"], "ClassId": [3], "EncodedPixels": ["1 5"]})
    >>> write_submission(table, Path(tempfile.mkdtemp()) / "submission.csv").read_text()
    'ImageId,ClassId,EncodedPixels\\na.jpg,3,1 5\\n'
    """
    missing = [c for c in SUBMISSION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"submission table lacks the columns {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table[SUBMISSION_COLUMNS].to_csv(path, index=False)
    return path


def read_submission(path: str | Path) -> pd.DataFrame:
    """Read a submission CSV back (empty ``EncodedPixels`` stay empty strings, ``ClassId`` is int).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = path.write_text("ImageId,ClassId,EncodedPixels\\na.jpg,1,\\na.jpg,3,1 5\\n")
    >>> read_submission(path)["EncodedPixels"].tolist()
    ['', '1 5']
    """
    table = pd.read_csv(path, dtype={"ImageId": str, "EncodedPixels": str}, keep_default_na=False)
    missing = [c for c in SUBMISSION_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: lacks the columns {missing} (found {list(table.columns)})")
    return _tidy(table)


def table_masks(table: pd.DataFrame, image_id: str, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """The ``(height, width, 4)`` uint8 masks of one image from an annotation or submission table.

    >>> t = pd.DataFrame({"ImageId": ["a.jpg"], "ClassId": [2], "EncodedPixels": ["1 2"]})
    >>> table_masks(t, "a.jpg", (2, 2))[..., 1]
    array([[1, 0],
           [1, 0]], dtype=uint8)
    """
    masks = np.zeros((*shape, len(CLASSES)), np.uint8)
    for cls, rle in table.loc[table["ImageId"] == image_id, ["ClassId", "EncodedPixels"]].itertuples(index=False):
        masks[..., int(cls) - 1] |= rle_decode(rle, shape)
    return masks


def score_submission(truth: pd.DataFrame, submission: pd.DataFrame, image_ids: Sequence[str],
                     shape: tuple[int, int] = SEVERSTAL_SHAPE, per_class: bool = False) -> float | np.ndarray:
    """The competition metric: mean Dice over every (image, class) pair of ``image_ids`` (``per_class``: per class).

    >>> truth = pd.DataFrame({"ImageId": ["a.jpg"], "ClassId": [1], "EncodedPixels": ["1 2"]})
    >>> score_submission(truth, truth.iloc[:0], ["a.jpg", "b.jpg"], (2, 2))   # 7 of 8 pairs right
    0.875
    """
    ids = list(image_ids)
    if not ids:
        raise ValueError("score_submission: no image ids")
    dice = np.ones((len(ids), len(CLASSES)))
    annotated = set(truth["ImageId"]) | set(submission.loc[submission["EncodedPixels"].astype(str).str.strip() != "",
                                                          "ImageId"])
    for i, image_id in enumerate(ids):
        if image_id in annotated:
            dice[i] = dice_per_pair(table_masks(truth, image_id, shape), table_masks(submission, image_id, shape))
    return dice.mean(axis=0) if per_class else float(dice.mean())
