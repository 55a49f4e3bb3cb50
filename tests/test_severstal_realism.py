"""Tests of defectlib.severstal.mask_statistics, and of the synthetic stand-in against real masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from defectlib.errors import DataError
from defectlib.rle import rle_encode
from defectlib.images import list_images
from defectlib.severstal import mask_statistics, read_train_csv
from defectlib.synthetic import make_synthetic_severstal

SHAPE = (256, 1600)


def box(top: int, bottom: int, left: int, right: int, mask: np.ndarray | None = None) -> np.ndarray:
    """A mask with the rectangle rows top..bottom-1, columns left..right-1 set (added to ``mask``)."""
    mask = np.zeros(SHAPE, np.uint8) if mask is None else mask.copy()
    mask[top:bottom, left:right] = 1
    return mask


@pytest.fixture(scope="module")
def constructed() -> pd.DataFrame:
    """Five masks of known statistics on 3 annotated images, 2 more images defect-free."""
    pits = box(0, 10, 0, 10, box(100, 110, 1590, 1600))  # class 1: 2 components, 200 px, rows 0..109, x centre 0.5
    masks = [
        ("a.jpg", 1, pits),
        ("a.jpg", 3, box(0, 256, 790, 810)),             # full height, 20 columns: 5120 px, x centre 0.5
        ("b.jpg", 3, box(0, 128, 0, 40)),                # half height: 5120 px, x centre 20/1600
        ("c.jpg", 3, box(0, 256, 0, 10, box(0, 256, 100, 110))),  # 2 components, 5120 px
        ("c.jpg", 4, box(50, 150, 1500, 1600)),          # 10000 px, 1 component
    ]
    return pd.DataFrame([(i, c, rle_encode(m)) for i, c, m in masks], columns=["ImageId", "ClassId", "EncodedPixels"])


def test_statistics_of_a_constructed_table(constructed: pd.DataFrame) -> None:
    stats = mask_statistics(constructed, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])
    value = stats["value"]
    assert value[("images", "all")] == 5
    assert value[("defect-free images (share)", "all")] == pytest.approx(2 / 5)
    assert value[("defective images with 2+ classes (share)", "all")] == pytest.approx(2 / 3)
    assert [value[("masks", c)] for c in ["all", "1", "2", "3", "4"]] == [5, 1, 0, 3, 1]
    assert value[("masks (share)", "3")] == pytest.approx(3 / 5)
    assert stats.loc[("area (pixels)", "3")].tolist() == [5120, 5120, 5120]
    assert stats.loc[("area (pixels)", "all")].tolist() == [5120, 5120, 5120]
    assert value[("area (pixels)", "1")] == 200 and value[("area (pixels)", "4")] == 10000
    assert stats.loc[("components", "3")].tolist() == [1, 1, 1.5]        # 1, 1, 2
    assert value[("components", "1")] == 2
    assert value[("x centre (share of width)", "1")] == pytest.approx(0.5)  # 50 px at 5 and 50 px at 1595
    assert value[("x centre (share of width)", "4")] == pytest.approx(1550 / 1600)
    assert value[("x centre (share of width)", "3")] == pytest.approx(55 / 1600)  # median of 800, 20, 55 (/1600)
    assert stats.loc[("rows spanned (share of height)", "3")].tolist() == [1.0, 0.75, 1.0]  # 1, 0.5, 1
    assert value[("rows spanned (share of height)", "1")] == pytest.approx(110 / 256)
    assert np.isnan(stats.loc[("area (pixels)", "2")]).all()             # no class-2 mask: no distribution
    assert np.isnan(stats.loc[("masks", "all"), "p25"])                   # counts have no quartiles


def test_without_image_ids_the_defect_free_share_is_unknown(constructed: pd.DataFrame) -> None:
    stats = mask_statistics(constructed)
    assert stats.loc[("images", "all"), "value"] == 3
    assert np.isnan(stats.loc[("defect-free images (share)", "all"), "value"])


def test_annotated_images_must_be_among_the_image_ids(constructed: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"1 annotated image\(s\) are not in image_ids, e.g. \['c.jpg'\]"):
        mask_statistics(constructed, ["a.jpg", "b.jpg"])


def test_the_stand_in_is_within_bounds_of_real_masks(shared_data: Path, tmp_path: Path) -> None:
    """The statistics the generator was tuned on, against test.csv's 638 real masks and Kaggle's shares.

    Bounds: median area within a factor of 2, median components within 1, median rows spanned
    within 0.2 for every class; defect-free share within 0.05 of Kaggle's (47.0 %), two-class
    share of the defective images within 0.05 of Kaggle's (6.4 %), class 3 the majority of masks.
    """
    real = mask_statistics(read_train_csv(shared_data / "severstal" / "test.csv"))["value"]
    raw = pd.read_csv(shared_data / "severstal" / "defect_and_no_defect.csv").groupby("ImageID")["label"]
    kaggle_free = float((raw.max() == 0).mean())
    kaggle_two = float((raw.size()[raw.max() == 1] >= 2).mean())
    root = make_synthetic_severstal(tmp_path / "s", n_images=200, seed=0)
    synthetic = mask_statistics(read_train_csv(root / "train.csv"), list_images(root / "train_images"))["value"]

    assert synthetic[("defect-free images (share)", "all")] == pytest.approx(kaggle_free, abs=0.05)
    assert synthetic[("defective images with 2+ classes (share)", "all")] == pytest.approx(kaggle_two, abs=0.05)
    assert synthetic[("masks (share)", "3")] > 0.5
    for cls in ["1", "2", "3", "4"]:
        ratio = synthetic[("area (pixels)", cls)] / real[("area (pixels)", cls)]
        assert 0.5 <= ratio <= 2, (cls, ratio)
        assert abs(synthetic[("components", cls)] - real[("components", cls)]) <= 1, cls
        spanned = ("rows spanned (share of height)", cls)
        assert abs(synthetic[spanned] - real[spanned]) <= 0.2, cls
