"""Losses and metrics for defect segmentation, and the exact Kaggle (Severstal) metric.

Masks are ``(batch, height, width, classes)`` in 0..1; everything is computed per (image, class) pair.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

_AXES = (1, 2)  # height and width of (batch, height, width, classes)


def _tversky_terms(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    tp = ops.sum(y_true * y_pred, axis=_AXES)
    fn = ops.sum(y_true * (1.0 - y_pred), axis=_AXES)
    fp = ops.sum((1.0 - y_true) * y_pred, axis=_AXES)
    return tp, fn, fp


def tversky_per_pair(y_true, y_pred, alpha: float = 0.7, beta: float = 0.3, smooth: float = 1.0):
    """The Tversky index of every (image, class) pair, shape ``(batch, classes)``, from soft counts.

    Parameters
    ----------
    alpha : the weight of the false negatives.
    beta : the weight of the false positives.
    smooth : added to numerator and denominator (0 is Keras's index; 1 scores an empty pair predicted empty 1).

    >>> t = np.zeros((1, 2, 2, 2), "float32"); t[0, 0, :, 0] = 1   # class 1: top row; class 2: empty
    >>> p = np.zeros_like(t); p[0, 0, 0, 0] = 1                    # finds half of class 1
    >>> np.round(np.asarray(tversky_per_pair(t, p)), 4)            # (1 + 1) / (1 + 0.7 * 1 + 1), and 1
    array([[0.7407, 1.    ]], dtype=float32)
    """
    tp, fn, fp = _tversky_terms(y_true, y_pred)
    denominator = ops.maximum(tp + alpha * fn + beta * fp + smooth, keras.backend.epsilon())
    return (tp + smooth) / denominator


def keras_alpha_weighs_false_negatives() -> bool:
    """Whether the installed ``keras.losses.Tversky`` multiplies the false negatives by ``alpha``.

    True up to Keras 3.15.1; keras PR #23333 (next release) puts ``alpha`` on the false positives.

    >>> isinstance(keras_alpha_weighs_false_negatives(), bool)
    True
    """
    y_true = np.array([[1.0, 1.0, 0.0]], "float32")
    y_pred = np.array([[1.0, 0.0, 0.0]], "float32")  # TP 1, FN 1, FP 0: TI = 1 / (1 + weight of FN)
    return float(keras.losses.tversky(y_true, y_pred, alpha=1.0, beta=0.0)) > 0.25


def keras_tversky_weights(false_negatives: float, false_positives: float) -> dict[str, float]:
    """``alpha`` and ``beta`` for Keras's Tversky loss that weigh the false negatives and positives as given.

    >>> weights = keras_tversky_weights(0.7, 0.3)
    >>> weights == ({"alpha": 0.7, "beta": 0.3} if keras_alpha_weighs_false_negatives() else {"alpha": 0.3, "beta": 0.7})
    True
    """
    if keras_alpha_weighs_false_negatives():
        return {"alpha": false_negatives, "beta": false_positives}
    return {"alpha": false_positives, "beta": false_negatives}


@keras.saving.register_keras_serializable(package="defectlib")
def tversky_index(y_true, y_pred):
    """Keras metric: the mean smoothed Tversky index (``alpha=0.7, beta=0.3``) over the classes of each image.

    >>> t = np.ones((2, 4, 4, 4), "float32")
    >>> np.asarray(tversky_index(t, t)).tolist()
    [1.0, 1.0]
    """
    return ops.mean(tversky_per_pair(y_true, y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="defectlib")
def dice_coefficient(y_true, y_pred, threshold: float = 0.5):
    """Keras metric: the Kaggle Dice of each image (``y_pred`` thresholded, empty-and-empty counts 1).

    >>> t = np.zeros((1, 2, 2, 4), "float32"); t[0, 0, 0, 0] = 1
    >>> p = np.zeros_like(t); p[0, :, 0, 0] = 0.9             # 1 right pixel, 1 false alarm
    >>> np.asarray(dice_coefficient(t, p)).tolist()           # (2*1/(1+2) + 1 + 1 + 1) / 4
    [0.9166666865348816]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.greater(ops.cast(y_true, y_pred.dtype), 0.5), y_pred.dtype)
    y_hard = ops.cast(ops.greater(y_pred, threshold), y_pred.dtype)
    intersection = ops.sum(y_true * y_hard, axis=_AXES)
    total = ops.sum(y_true, axis=_AXES) + ops.sum(y_hard, axis=_AXES)
    dice = ops.where(total > 0, 2.0 * intersection / ops.maximum(total, 1.0), 1.0)
    return ops.mean(dice, axis=-1)


@keras.saving.register_keras_serializable(package="defectlib")
class FocalTversky(keras.losses.Loss):
    """The focal Tversky loss :math:`(1 - TI)^\\gamma` per (image, class) pair, averaged over classes.

    ``alpha``, ``beta`` and ``smooth`` as in :func:`tversky_per_pair` (``alpha`` weighs the false negatives).

    >>> t = np.zeros((1, 8, 8, 4), "float32"); t[0, 2:6, 2:6, 1] = 1
    >>> float(FocalTversky()(t, t)) < 1e-3, float(FocalTversky()(t, 1 - t)) > 0.9
    (True, True)
    """

    def __init__(self, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0,
                 reduction: str = "sum_over_batch_size", name: str = "focal_tversky", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha, self.beta, self.gamma, self.smooth = float(alpha), float(beta), float(gamma), float(smooth)

    def call(self, y_true, y_pred):
        ti = tversky_per_pair(y_true, y_pred, self.alpha, self.beta, self.smooth)
        # 1 - TI can come out a hair below 0 in float32; the power of a negative number is NaN.
        return ops.mean(ops.power(ops.maximum(1.0 - ti, 0.0), self.gamma), axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(alpha=self.alpha, beta=self.beta, gamma=self.gamma, smooth=self.smooth)
        return config


def focal_tversky_loss(alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0) -> FocalTversky:
    """The loss for ``model.compile(loss=...)``: a :class:`FocalTversky` with these settings.

    >>> focal_tversky_loss(gamma=1.0).get_config()["gamma"]
    1.0
    """
    return FocalTversky(alpha=alpha, beta=beta, gamma=gamma, smooth=smooth)


# --------------------------------------------------------------------------- the competition metric (NumPy)


def dice_per_pair(true_masks: np.ndarray, pred_masks: np.ndarray) -> np.ndarray:
    """Dice of every (image, class) pair of binary masks ``(..., height, width, classes)``, as Kaggle scores it.

    >>> t = np.zeros((2, 2, 1), "uint8"); t[0, 0, 0] = 1
    >>> p = np.zeros_like(t); p[:, 0, 0] = 1
    >>> dice_per_pair(t, p)   # 2 * 1 / (1 + 2)
    array([0.66666667])
    """
    true_masks, pred_masks = np.asarray(true_masks), np.asarray(pred_masks)
    if true_masks.shape != pred_masks.shape:
        raise ValueError(f"true masks {true_masks.shape} and predicted masks {pred_masks.shape} differ in shape")
    if true_masks.ndim < 3:
        raise ValueError(f"expected (..., height, width, classes) masks, got shape {true_masks.shape}")
    t, p = true_masks != 0, pred_masks != 0
    axes = (-3, -2)
    intersection = np.logical_and(t, p).sum(axis=axes, dtype=np.int64)
    total = t.sum(axis=axes, dtype=np.int64) + p.sum(axis=axes, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0, 1.0, 2.0 * intersection / np.maximum(total, 1))


def kaggle_mean_dice(true_masks: np.ndarray, pred_masks: np.ndarray, per_class: bool = False) -> float | np.ndarray:
    """The Severstal competition metric: the mean Dice over every (image, class) pair (empty and empty scores 1).

    >>> t = np.zeros((1, 4, 4, 4), "uint8"); t[0, :2, :2, 0] = 1    # one defect of class 1
    >>> kaggle_mean_dice(t, np.zeros_like(t))                       # empty submission: 3 empty pairs right
    0.75
    """
    dice = dice_per_pair(true_masks, pred_masks)
    dice = dice.reshape(-1, dice.shape[-1])
    return dice.mean(axis=0) if per_class else float(dice.mean())


def pair_counts(masks: np.ndarray) -> list[int]:
    """How many (image, class) pairs have a mask (nonzero somewhere), per class.

    >>> m = np.zeros((3, 2, 2, 4), "uint8"); m[0, 0, 0, 2] = m[1, 1, 1, 2] = 1
    >>> pair_counts(m)
    [0, 0, 2, 0]
    """
    masks = np.asarray(masks)
    return [int(v) for v in (masks.reshape(-1, *masks.shape[-3:]) != 0).any(axis=(1, 2)).sum(axis=0)]
