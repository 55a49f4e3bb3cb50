"""Tests of the Kaggle run-length encoding in defectlib.rle."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from defectlib.rle import SEVERSTAL_SHAPE, masks_to_rles, parse_rle, rle_decode, rle_encode, rles_to_masks

H, W = SEVERSTAL_SHAPE


def runs_to_rle(gaps_and_lengths: list[tuple[int, int]]) -> str:
    """A valid encoding from (gap before the run, run length) pairs; runs are 1 pixel apart at least."""
    pairs, pixel = [], 1
    for gap, length in gaps_and_lengths:
        start = pixel + gap
        pairs += [start, length]
        pixel = start + length
    return " ".join(map(str, pairs))


# At most 50 * (5000 + 3000) = 400,000 pixels: always inside the 409,600 of an image.
runs = st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 3000)), max_size=50)
rectangles = st.lists(
    st.tuples(st.integers(0, H - 1), st.integers(0, W - 1), st.integers(1, 120), st.integers(1, 600)), max_size=6
)


@settings(max_examples=50, deadline=None)
@given(runs)
def test_random_runs_round_trip_on_severstal_shape(pairs: list[tuple[int, int]]) -> None:
    rle = runs_to_rle(pairs)
    mask = rle_decode(rle)
    assert mask.shape == SEVERSTAL_SHAPE and mask.dtype == np.uint8
    assert mask.sum() == sum(n for _, n in pairs)
    assert rle_encode(mask) == rle
    np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)


@settings(max_examples=50, deadline=None)
@given(rectangles)
def test_random_rectangles_round_trip_on_severstal_shape(boxes: list[tuple[int, int, int, int]]) -> None:
    mask = np.zeros(SEVERSTAL_SHAPE, np.uint8)
    for top, left, height, width in boxes:
        mask[top : top + height, left : left + width] = 1
    rle = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(rle), mask)
    assert rle_encode(rle_decode(rle)) == rle


@settings(max_examples=100, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_random_small_masks_round_trip(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(rle, mask.shape), mask.astype(np.uint8))


def test_pixels_are_numbered_down_the_columns_from_one() -> None:
    np.testing.assert_array_equal(rle_decode("2 1", (3, 2)), [[0, 0], [1, 0], [0, 0]])
    np.testing.assert_array_equal(rle_decode("3 2", (3, 2)), [[0, 1], [0, 0], [1, 0]])
    assert rle_encode(np.ones((3, 2))) == "1 6"


def test_any_nonzero_pixel_is_set() -> None:
    assert rle_encode(np.array([[0.0, 2.5], [-1, 0]])) == "2 2"


def test_four_class_stack_round_trip() -> None:
    rng = np.random.default_rng(0)
    masks = (rng.random((H, W, 4)) < [0.001, 0.0, 0.3, 0.9]).astype(np.uint8)
    rles = masks_to_rles(masks)
    assert rles[1] == "" and all(rles[k] for k in (0, 2, 3))
    np.testing.assert_array_equal(rles_to_masks(rles), masks)


@pytest.mark.parametrize("empty", ["", "   ", float("nan"), np.nan, None])
def test_empty_encodings_give_an_empty_mask(empty: object) -> None:
    mask = rle_decode(empty, (5, 7))
    assert mask.shape == (5, 7) and not mask.any()
    assert rle_encode(mask) == ""


def test_nan_from_pandas_is_empty() -> None:
    value = pd.read_csv(io.StringIO("a,b\nx,\n"))["b"][0]
    assert isinstance(value, float) and math.isnan(value)
    assert not rle_decode(value).any()


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 2 3", "odd number of values"),
        ("1 2.5", "'2.5' is not a whole number"),
        ("1 x", "'x' is not a whole number"),
        ("1 0", "length 0 is not positive"),
        ("3 -2", "length -2 is not positive"),
        ("0 2", "start 0 is below 1"),
        ("15 3", "past the image's 16 pixels"),
        ("10 2 1 3", "runs must be sorted"),
        ("1 5 3 2", "overlaps run 1"),
        (7, "must be a string"),
    ],
)
def test_malformed_encodings_raise_a_clear_value_error(rle: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rle_decode(rle, (4, 4))
    with pytest.raises(ValueError, match=message):
        parse_rle(rle, (4, 4))


def test_wrong_dimensions_raise() -> None:
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="classes"):
        masks_to_rles(np.zeros((2, 2)))


@pytest.mark.real_data
def test_all_real_masks_round_trip(shared_data) -> None:
    table = pd.read_csv(shared_data / "severstal" / "test.csv")
    assert len(table) == 638
    for rle in table["EncodedPixels"]:
        mask = rle_decode(rle)
        assert mask.any()
        assert rle_encode(mask) == rle
