"""Tests of the segmentation losses and metrics and of the Kaggle metric in defectlib.losses."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from defectlib.losses import (keras_alpha_weighs_false_negatives, keras_tversky_weights,
    FocalTversky,
    dice_coefficient,
    dice_per_pair,
    focal_tversky_loss,
    kaggle_mean_dice,
    pair_counts,
    tversky_index,
    tversky_per_pair,
)


def masks(shape=(1, 8, 8, 4)) -> np.ndarray:
    return np.zeros(shape, np.float32)


# --------------------------------------------------------------------------- the Kaggle metric


def test_both_empty_is_one_and_disjoint_is_zero():
    empty = masks()
    assert kaggle_mean_dice(empty, empty) == 1.0
    a, b = masks(), masks()
    a[0, :4, :, 2] = 1
    b[0, 4:, :, 2] = 1
    assert dice_per_pair(a, b).tolist() == [[1.0, 1.0, 0.0, 1.0]]
    only_true = dice_per_pair(a, empty)
    assert only_true[0, 2] == 0.0 and kaggle_mean_dice(empty, a) == 0.75


def test_known_partial_overlaps_are_exact():
    t, p = masks((2, 4, 4, 4)), masks((2, 4, 4, 4))
    t[0, :2, :2, 0] = 1          # 4 pixels
    p[0, :2, :1, 0] = 1          # 2 of them: 2*2/(4+2) = 2/3
    p[0, 3, 3, 0] = 1            # plus one false pixel: 2*2/(4+3) = 4/7
    t[1, :, :, 3] = 1            # 16 pixels
    p[1, :, :2, 3] = 1           # 8 of them: 2*8/(16+8) = 2/3
    p[1, 0, 0, 1] = 1            # a false alarm on an empty class: 0
    dice = dice_per_pair(t, p)
    assert dice[0].tolist() == [4 / 7, 1.0, 1.0, 1.0]
    assert dice[1].tolist() == [1.0, 0.0, 1.0, 2 / 3]
    assert math.isclose(kaggle_mean_dice(t, p), (4 / 7 + 2 / 3 + 5) / 8, rel_tol=1e-15)
    np.testing.assert_allclose(kaggle_mean_dice(t, p, per_class=True), [(4 / 7 + 1) / 2, 0.5, 1.0, (1 + 2 / 3) / 2])
    assert pair_counts(t) == [1, 0, 0, 1]


def test_any_nonzero_value_is_a_mask_pixel_and_shapes_must_match():
    t = masks((4, 4, 1))
    t[0, 0, 0] = 255
    p = t * 0.3
    assert kaggle_mean_dice(t, p) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        dice_per_pair(t, masks((4, 5, 1)))


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, (3, 5, 6, 4), elements=st.integers(0, 1)),
       arrays(np.uint8, (3, 5, 6, 4), elements=st.integers(0, 1)))
def test_metric_matches_a_pixel_set_reference(t: np.ndarray, p: np.ndarray):
    scores = []
    for i in range(t.shape[0]):
        for k in range(t.shape[-1]):
            x = {tuple(ix) for ix in np.argwhere(t[i, ..., k])}
            y = {tuple(ix) for ix in np.argwhere(p[i, ..., k])}
            scores.append(1.0 if not x and not y else 2 * len(x & y) / (len(x) + len(y)))
    assert math.isclose(kaggle_mean_dice(t, p), float(np.mean(scores)), rel_tol=1e-12)


def test_keras_dice_metric_is_the_kaggle_metric_per_image():
    rng = np.random.default_rng(0)
    t = (rng.random((3, 8, 8, 4)) < 0.2).astype(np.float32)
    t[0, ..., 1] = 0
    probabilities = rng.random((3, 8, 8, 4)).astype(np.float32)
    per_image = np.asarray(dice_coefficient(t, probabilities))
    expected = dice_per_pair(t, probabilities > 0.5).mean(axis=-1)
    np.testing.assert_allclose(per_image, expected, rtol=1e-6)


# --------------------------------------------------------------------------- Tversky index, focal Tversky loss


def sample_pair():
    t = masks((2, 8, 8, 4))
    t[0, 2:6, 2:6, 0] = 1
    t[1, :3, :, 2] = 1
    rng = np.random.default_rng(1)
    p = np.clip(t * 0.8 + rng.random(t.shape).astype(np.float32) * 0.3, 0, 1)
    return t, p


@pytest.fixture(params=["installed Keras", "Keras with PR 23333"])
def keras_convention(request, monkeypatch):
    """Keras's Tversky as installed, and with alpha and beta swapped as keras PR #23333 (Keras 3.16) does."""
    if request.param == "Keras with PR 23333":
        function, loss = keras.losses.tversky, keras.losses.Tversky
        monkeypatch.setattr(keras.losses, "tversky", lambda y_true, y_pred, alpha=0.5, beta=0.5, axis=None: function(
            y_true, y_pred, alpha=beta, beta=alpha, axis=axis))
        monkeypatch.setattr(keras.losses, "Tversky", lambda alpha=0.5, beta=0.5, **kwargs: loss(
            alpha=beta, beta=alpha, **kwargs))
    return request.param


def test_the_convention_is_read_from_keras(keras_convention):
    installed = keras_alpha_weighs_false_negatives()
    assert keras_tversky_weights(0.7, 0.3) == ({"alpha": 0.7, "beta": 0.3} if installed else {"alpha": 0.3, "beta": 0.7})


def test_the_two_conventions_are_told_apart(monkeypatch):
    before = keras_alpha_weighs_false_negatives()
    function = keras.losses.tversky
    monkeypatch.setattr(keras.losses, "tversky", lambda y_true, y_pred, alpha=0.5, beta=0.5, axis=None: function(
        y_true, y_pred, alpha=beta, beta=alpha, axis=axis))
    assert keras_alpha_weighs_false_negatives() is not before


def test_without_smoothing_the_index_is_one_minus_keras_tversky(keras_convention):
    t, p = sample_pair()
    weights = keras_tversky_weights(false_negatives=0.7, false_positives=0.3)
    ours = np.asarray(tversky_per_pair(t, p, alpha=0.7, beta=0.3, smooth=0.0))
    keras_per_pair = 1 - np.asarray(keras.losses.tversky(t, p, **weights, axis=(1, 2)))
    np.testing.assert_allclose(ours, keras_per_pair, rtol=1e-5, atol=1e-6)
    # Keras's default axis=None pools the whole batch and every class into one index.
    pooled = 1 - float(keras.losses.Tversky(**weights)(t, p))
    tp, fn, fp = (t * p).sum(), (t * (1 - p)).sum(), ((1 - t) * p).sum()
    assert math.isclose(pooled, tp / (tp + 0.7 * fn + 0.3 * fp), rel_tol=1e-5)


def test_alpha_weighs_false_negatives(keras_convention):
    t = masks((1, 4, 4, 1))
    t[0, :2] = 1                                           # 8 defect pixels
    missed = t.copy(); missed[0, 0, :2] = 0                # 2 false negatives
    extra = t.copy(); extra[0, 3, :2] = 1                  # 2 false positives
    ti_missed, ti_extra = (float(np.asarray(tversky_per_pair(t, p, 0.7, 0.3, 0.0))[0, 0]) for p in (missed, extra))
    assert math.isclose(ti_missed, 6 / (6 + 0.7 * 2), rel_tol=1e-6)
    assert math.isclose(ti_extra, 8 / (8 + 0.3 * 2), rel_tol=1e-6)
    assert ti_missed < ti_extra
    # The same for Keras's Tversky, given the weights in the installed convention.
    loss = keras.losses.Tversky(**keras_tversky_weights(0.7, 0.3))
    assert float(loss(t, missed)) > float(loss(t, extra))


def test_perfect_prediction_costs_nothing_and_worse_costs_more():
    t, _ = sample_pair()
    loss = focal_tversky_loss()
    assert float(loss(t, t)) < 1e-4
    previous = float(loss(t, t))
    for noise in (0.1, 0.3, 0.6, 1.0):           # more and more wrong: move towards the inverted mask
        value = float(loss(t, (1 - noise) * t + noise * (1 - t)))
        assert value > previous
        previous = value
    assert previous > 0.95


def test_empty_masks_are_handled_by_smoothing():
    t = masks((1, 8, 8, 4))
    p = masks((1, 8, 8, 4))
    assert float(FocalTversky()(t, p)) < 1e-6                     # nothing to find, nothing found
    assert float(FocalTversky(smooth=0.0)(t, p)) == pytest.approx(1.0)   # Keras-style: empty counts as failure
    p[0, :2, :2, 1] = 0.9                                          # a false alarm on an empty class
    variable = tf.Variable(p)
    values, gradients = {}, {}
    for smooth in (1.0, 0.0):
        with tf.GradientTape() as tape:
            value = FocalTversky(smooth=smooth)(t, variable)
        values[smooth] = float(value)
        gradients[smooth] = np.asarray(tape.gradient(value, variable))
    assert 0.1 < values[1.0] < 1.0 and np.all(gradients[1.0][0, :2, :2, 1] > 0)  # penalised, pushed down
    assert values[0.0] == pytest.approx(1.0) and not np.any(gradients[0.0])      # without smoothing: no signal


def test_gamma_changes_the_weight_of_good_and_bad_pairs():
    t, p = sample_pair()
    ti = np.asarray(tversky_per_pair(t, p))
    assert np.all((ti > 0) & (ti < 1))
    values = {g: float(FocalTversky(gamma=g)(t, p)) for g in (0.5, 0.75, 1.0, 2.0)}
    assert math.isclose(values[1.0], float(np.mean(1 - ti)), rel_tol=1e-5)  # gamma 1: the Tversky loss
    assert values[0.5] > values[0.75] > values[1.0] > values[2.0]            # 1 - TI < 1: smaller powers are larger
    good, bad = 0.95, 0.4                                                       # index of a good and a bad pair
    ratio = {g: (1 - bad) ** g / (1 - good) ** g for g in (0.75, 2.0)}
    assert ratio[2.0] > ratio[0.75]                                             # a larger gamma focuses on bad pairs


def test_loss_is_one_value_per_image_and_takes_sample_weights():
    t, p = sample_pair()
    per_image = np.asarray(FocalTversky(reduction=None)(t, p))
    assert per_image.shape == (2,)
    weighted = float(FocalTversky()(t, p, sample_weight=np.array([1.0, 0.0])))
    assert math.isclose(weighted, per_image[0] / 2, rel_tol=1e-5)
    assert np.asarray(tversky_index(t, p)).shape == (2,)


def test_serialisation_round_trip():
    loss = focal_tversky_loss(alpha=0.6, beta=0.4, gamma=1.5, smooth=2.0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, FocalTversky)
    assert (again.alpha, again.beta, again.gamma, again.smooth) == (0.6, 0.4, 1.5, 2.0)
    t, p = sample_pair()
    assert float(again(t, p)) == pytest.approx(float(loss(t, p)))
    for metric in (tversky_index, dice_coefficient):
        assert keras.metrics.deserialize(keras.metrics.serialize(metric)) is metric


def test_compiled_model_trains_with_the_loss_and_metrics():
    keras.utils.set_random_seed(0)
    t, _ = sample_pair()
    model = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(4, 3, padding="same", activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss=focal_tversky_loss(),
                  metrics=[tversky_index, dice_coefficient])
    history = model.fit(t, t, epochs=15, verbose=0).history
    assert set(history) >= {"loss", "tversky_index", "dice_coefficient"}
    assert all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
