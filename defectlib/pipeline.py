"""The Severstal two-stage pipeline: a classifier gates which images a segmentation network sees.

Models are callables from float32 RGB batches ``(n, h, w, 3)`` to scores ``(n,)`` or ``(n, 1)`` (classifier)
or probabilities ``(n, h, w, classes)`` (segmenter); Keras models are called with ``predict_on_batch``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .images import load_severstal_images, resize_images
from .submission import merge_tables, submission_table
from .rle import SEVERSTAL_SHAPE

# ---- stage 1: the decision threshold


def choose_threshold(y_true: Sequence[int], scores: Sequence[float], min_recall: float = 0.99) -> float:
    """The highest score threshold whose recall of defective images is at least ``min_recall``.

    Choose it on validation data; an image is sent on when its score is ``>= threshold``.

    >>> choose_threshold([0, 0, 0, 1, 1, 1, 1], [0.1, 0.3, 0.7, 0.2, 0.6, 0.8, 0.9], min_recall=0.75)
    0.6
    """
    from sklearn.metrics import precision_recall_curve

    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float).ravel()
    if y_true.shape != scores.shape:
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    if not 0 < min_recall <= 1:
        raise ValueError(f"min_recall={min_recall}: expected a number in (0, 1]")
    if y_true.sum() == 0:
        raise DataError("choose_threshold: no defective image among the labels, so recall is undefined")
    _, recall, thresholds = precision_recall_curve(y_true, scores)
    # recall[i] is the recall of "score >= thresholds[i]"; thresholds increase, recall decreases.
    ok = recall[:-1] >= min_recall
    return float(thresholds[ok].max())


def threshold_summary(y_true: Sequence[int], scores: Sequence[float], threshold: float) -> dict[str, float]:
    """What a threshold does on labelled data: recall, precision, false-positive rate, share sent on.

    >>> threshold_summary([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9], 0.5)["sent"]
    0.75
    """
    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float).ravel()
    predicted = scores >= threshold
    tp = int((predicted & (y_true == 1)).sum())
    fp = int((predicted & (y_true == 0)).sum())
    positives, negatives = int((y_true == 1).sum()), int((y_true == 0).sum())
    return {
        "threshold": round(float(threshold), 6),
        "recall": round(tp / positives, 4) if positives else float("nan"),
        "precision": round(tp / (tp + fp), 4) if tp + fp else float("nan"),
        "false_positive_rate": round(fp / negatives, 4) if negatives else float("nan"),
        "accuracy": round(float((predicted == (y_true == 1)).mean()), 4),
        "sent": round(float(predicted.mean()), 4),
    }


# --------------------------------------------------------------------------- stage 2: from probabilities to masks


def _per_class(value: float | Sequence[float], n: int, what: str) -> np.ndarray:
    values = np.broadcast_to(np.asarray(value, dtype=float), (n,)) if np.ndim(value) == 0 else np.asarray(value, float)
    if values.shape != (n,):
        raise ValueError(f"{what}: expected one number or {n} (one per class), got {value!r}")
    return values


def clean_masks(probabilities: np.ndarray, threshold: float | Sequence[float] = 0.5,
                min_area: int | Sequence[int] = 0, min_component: int | Sequence[int] = 0) -> np.ndarray:
    """Threshold ``(h, w, classes)`` or ``(n, h, w, classes)`` probabilities into ``uint8`` masks, then clean them.

    Parameters
    ----------
    threshold : a pixel is set at or above it.
    min_component : 8-connected regions smaller than this many pixels are removed.
    min_area : a class with fewer pixels left is emptied (a stray pixel on a clean image costs a Dice of 1).
    Each is one number or one per class.

    >>> p = np.zeros((4, 6, 2)); p[:2, :2, 0] = 0.9; p[3, 5, 0] = 0.8; p[:, 3, 1] = 0.6
    >>> m = clean_masks(p, threshold=0.5, min_component=2)   # the lone pixel of class 1 goes
    >>> int(m[..., 0].sum()), int(m[..., 1].sum())
    (4, 4)
    """
    import cv2

    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 4:
        return np.stack([clean_masks(p, threshold, min_area, min_component) for p in probabilities])
    if probabilities.ndim != 3:
        raise ValueError(f"expected (height, width, classes) or (n, height, width, classes), got {probabilities.shape}")
    n_classes = probabilities.shape[-1]
    thresholds = _per_class(threshold, n_classes, "threshold")
    areas = _per_class(min_area, n_classes, "min_area")
    components = _per_class(min_component, n_classes, "min_component")
    planes = np.zeros((n_classes, *probabilities.shape[:-1]), np.uint8)   # class by class in memory (see below)
    for k in range(n_classes):
        mask = probabilities[..., k] >= thresholds[k]            # a contiguous boolean copy of class k
        if not mask.any():
            continue
        if components[k] > 1:  # label the regions inside the box around the set pixels (the same regions, faster)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
            _, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask[box]).view(np.uint8),
                                                                   connectivity=8)
            keep = stats[:, cv2.CC_STAT_AREA] >= components[k]   # one entry per region; label 0 is the background
            keep[0] = False
            if not keep[1:].all():
                mask[box] = keep[labels]
        if np.count_nonzero(mask) >= max(areas[k], 1):
            planes[k] = mask
    return np.moveaxis(planes, 0, -1)   # (height, width, classes), each class's mask one contiguous block


def choose_min_area(true_masks: np.ndarray, probabilities: np.ndarray, candidates: Sequence[int],
                    threshold: float | Sequence[float] = 0.5) -> list[int]:
    """For each class, the candidate ``min_area`` of :func:`clean_masks` with the best mean Dice (ties: smallest).

    Choose it on validation images, defect-free ones included; areas are in pixels of the masks' resolution.

    >>> truth = np.zeros((2, 4, 4, 1), "uint8"); truth[0, :2, :2] = 1       # image 1: a 4-pixel defect
    >>> p = np.zeros((2, 4, 4, 1)); p[0, :2, :2] = 0.9; p[1, 3, :2] = 0.8  # image 2: a 2-pixel false alarm
    >>> choose_min_area(truth, p, candidates=[0, 3, 5])                    # 3 keeps the defect, drops the alarm
    [3]
    """
    from .losses import kaggle_mean_dice

    true_masks, probabilities = np.asarray(true_masks), np.asarray(probabilities)
    if true_masks.shape != probabilities.shape or true_masks.ndim != 4:
        raise ValueError(f"expected two (n, h, w, classes) arrays of one shape, got {true_masks.shape} and "
                         f"{probabilities.shape}")
    candidates = sorted(int(c) for c in candidates)
    if not candidates:
        raise ValueError("choose_min_area: no candidate areas")
    dice = np.array([kaggle_mean_dice(true_masks, clean_masks(probabilities, threshold, min_area=c), per_class=True)
                     for c in candidates])                         # (candidates, classes)
    return [candidates[i] for i in np.argmax(dice, axis=0)]         # argmax: the first (smallest) of ties


def upsample(probabilities: np.ndarray, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """Resize one ``(h, w, classes)`` probability map to ``shape`` (height, width), bilinearly.

    >>> upsample(np.zeros((64, 400, 4), "float32")).shape
    (256, 1600, 4)
    """
    import cv2

    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.shape[:2] == tuple(shape):
        return probabilities
    resized = cv2.resize(probabilities, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized.reshape(*shape, probabilities.shape[-1])


def full_size_masks(probabilities: np.ndarray, shape: tuple[int, int] = SEVERSTAL_SHAPE,
                    threshold: float | Sequence[float] = 0.5, min_area: int | Sequence[int] = 0,
                    min_component: int | Sequence[int] = 0) -> np.ndarray:
    """``clean_masks(upsample(probabilities, shape), ...)`` for one map, skipping classes below threshold.

    Bilinear interpolation never exceeds the largest input value, so such a class is empty at full size too.

    >>> p = np.zeros((64, 400, 4), "float32"); p[10:20, 30:60, 2] = 0.9
    >>> bool(np.array_equal(full_size_masks(p, min_area=100), clean_masks(upsample(p), min_area=100)))
    True
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3:
        raise ValueError(f"expected one (height, width, classes) map, got shape {probabilities.shape}")
    n_classes = probabilities.shape[-1]
    thresholds = _per_class(threshold, n_classes, "threshold")
    # A margin of 1e-6 keeps the test safe from rounding in the interpolation's arithmetic.
    largest = np.array([probabilities[..., k].max() for k in range(n_classes)])  # faster than one max over axes
    live = np.flatnonzero(largest >= thresholds - 1e-6)
    planes = np.zeros((n_classes, *shape), np.uint8)
    if live.size:
        cleaned = clean_masks(upsample(probabilities[..., live], shape), thresholds[live],
                              _per_class(min_area, n_classes, "min_area")[live],
                              _per_class(min_component, n_classes, "min_component")[live])
        planes[live] = np.moveaxis(cleaned, -1, 0)
    return np.moveaxis(planes, 0, -1)   # as clean_masks: each class's mask one contiguous block


# --------------------------------------------------------------------------- the two stages together


def _input_size(model, given: tuple[int, int] | None) -> tuple[int, int] | None:
    if given is not None:
        return tuple(given)
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4 and None not in shape[1:3]:
        return tuple(shape[1:3])
    return None


def _progress_bar(dataset_or_count, show: bool, unit: str = "batch"):
    """A ``keras.utils.Progbar`` over a dataset's batches (or a count), or ``None`` when not shown."""
    if not show:
        return None
    import keras

    n = dataset_or_count if isinstance(dataset_or_count, int) else int(dataset_or_count.cardinality())
    return keras.utils.Progbar(n if n >= 0 else None, unit_name=unit)


def _call(model, x: np.ndarray) -> np.ndarray:
    predict = getattr(model, "predict_on_batch", None)
    return np.asarray(predict(x) if predict is not None else model(x))


def warm_up(model, input_size: tuple[int, int], batch_sizes: Sequence[int] = (8, 1)) -> None:
    """Call a model once per batch size on blank images, so that later timings exclude graph building.

    >>> calls = []
    >>> warm_up(lambda x: calls.append(x.shape), (4, 8), batch_sizes=(2, 1))
    >>> calls
    [(2, 4, 8, 3), (1, 4, 8, 3)]
    """
    for n in batch_sizes:
        _call(model, np.zeros((n, *input_size, 3), np.float32))


def classifier_scores(model, dataset, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a classifier over a dataset of ``(images, labels)``, aligned, in one pass.

    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1, 1, 1), "float32"), [0.0, 0.0, 1.0, 1.0])).batch(3)
    >>> classifier_scores(lambda b: np.full((len(b), 1), 0.5), ds)[0].tolist()
    [0, 0, 1, 1]
    """
    labels, scores, bar = [], [], _progress_bar(dataset, progress)
    for images, y in dataset:
        scores.append(_call(model, np.asarray(images)).reshape(len(y), -1)[:, 0])
        labels.append(np.asarray(y))
        if bar:
            bar.add(1)
    if not labels:
        raise ValueError("the dataset is empty")
    return np.concatenate(labels).astype(int), np.concatenate(scores)


def predict_segmentation(model, dataset, limit: int | None = None,
                         progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """True masks (uint8) and predicted probabilities (float32) of at most ``limit`` images, in one pass.

    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((3, 2, 2, 3), "float32"), np.zeros((3, 2, 2, 4)))).batch(2)
    >>> predict_segmentation(lambda x: np.full((len(x), 2, 2, 4), 0.2), ds, limit=2)[1].shape
    (2, 2, 2, 4)
    """
    truth, probabilities, n, bar = [], [], 0, _progress_bar(dataset, progress and limit is None)
    bar = bar or _progress_bar(limit, progress and limit is not None, unit="image")
    for images, masks in dataset:
        truth.append(np.asarray(masks).astype(np.uint8))
        probabilities.append(_call(model, np.asarray(images)).astype(np.float32))
        n += len(truth[-1])
        if bar:
            bar.update(min(n, limit) if limit is not None else len(probabilities))
        if limit is not None and n >= limit:
            break
    if not truth:
        raise ValueError("the dataset is empty")
    return np.concatenate(truth)[:limit], np.concatenate(probabilities)[:limit]


@dataclass
class TwoStageStats:
    """What :func:`predict_two_stage` did: counts, scores and seconds per part."""

    n_images: int
    segmented_ids: list[str]
    scores: np.ndarray | None
    seconds: dict[str, float] = field(default_factory=dict)
    gate: bool = True

    @property
    def n_segmented(self) -> int:
        return len(self.segmented_ids)

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds["total"] if self.seconds.get("total") else float("nan")

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        how = "classifier gate on" if self.gate else "no gate: every image segmented"
        return (f"{self.n_images} images ({how}), {self.n_segmented} segmented; "
                f"{self.images_per_second:.2f} images/s ({parts})")


@dataclass(frozen=True)
class TwoStageSettings:
    """How :func:`predict_two_stage` runs; change one field with ``dataclasses.replace``.

    Parameters
    ----------
    threshold : the classifier score at or above which an image is segmented.
    gate : ``False`` skips the classifier and segments every image.
    batch_size : images per call of the segmenter; ``read_batch_size`` (default the same) per read and per
        call of the classifier.
    classifier_size, segmenter_size : the networks' input sizes (default: the models' input shapes).
    mask_threshold, min_area, min_component : the settings of :func:`clean_masks`, in pixels of ``out_shape``.
    out_shape : the size of the image files and of the predicted masks.
    include_empty : write an empty row for every (image, class) without a mask.
    progress : show a progress bar over the images.

    >>> import dataclasses
    >>> dataclasses.replace(TwoStageSettings(threshold=0.3), min_area=200).min_area
    200
    """

    threshold: float = 0.5
    gate: bool = True
    batch_size: int = 8
    read_batch_size: int | None = None
    classifier_size: tuple[int, int] | None = None
    segmenter_size: tuple[int, int] | None = None
    mask_threshold: float | Sequence[float] = 0.5
    min_area: int | Sequence[int] = 0
    min_component: int | Sequence[int] = 0
    out_shape: tuple[int, int] = SEVERSTAL_SHAPE
    include_empty: bool = False
    progress: bool = False

    @property
    def read_size(self) -> int:
        return self.batch_size if self.read_batch_size is None else self.read_batch_size


class _SegmentQueue:
    """Gathers the images the gate sends on into full batches of the segmenter; segments and encodes them."""

    def __init__(self, segmenter: Callable, settings: TwoStageSettings, seconds: dict[str, float]):
        self.segmenter, self.settings, self.seconds = segmenter, settings, seconds
        self.images: list[np.ndarray] = []
        self.ids: list[str] = []
        self.segmented: list[str] = []
        self.frames: list[pd.DataFrame] = []

    def add(self, ids: Sequence[str], images: np.ndarray) -> None:
        self.ids.extend(ids)
        self.images.extend(images)
        while len(self.images) >= self.settings.batch_size:
            self.segment(self.settings.batch_size)

    def segment(self, n: int) -> None:
        s, tick = self.settings, time.perf_counter()
        probabilities = _call(self.segmenter, np.stack(self.images[:n]))
        self.seconds["segment"] += time.perf_counter() - tick
        tick = time.perf_counter()
        masks = [full_size_masks(p, s.out_shape, s.mask_threshold, s.min_area, s.min_component) for p in probabilities]
        self.frames.append(submission_table(self.ids[:n], masks, include_empty=s.include_empty))
        self.segmented.extend(self.ids[:n])
        del self.images[:n], self.ids[:n]
        self.seconds["postprocess"] += time.perf_counter() - tick


def _check_inputs(ids: list[str], classifier, settings: TwoStageSettings, images_dir, images) -> None:
    if (images is None) == (images_dir is None):
        raise ValueError("give exactly one of images_dir= (files) or images= (an array)")
    if images is not None and len(images) != len(ids):
        raise ValueError(f"{len(ids)} image ids but {len(images)} images")
    if settings.gate and classifier is None:
        raise ValueError("gate=True needs a classifier")
    if settings.batch_size < 1 or settings.read_size < 1:
        raise ValueError(f"batch_size={settings.batch_size}, read_batch_size={settings.read_batch_size}: "
                         "batch sizes must be >= 1")


def predict_two_stage(image_ids: Sequence[str], classifier: Callable | None, segmenter: Callable,
                      settings: TwoStageSettings = TwoStageSettings(), *, images_dir: str | Path | None = None,
                      images: np.ndarray | None = None) -> tuple[pd.DataFrame, TwoStageStats]:
    """Run the two-stage pipeline over images; return ``(submission table, stats)``.

    Images come from ``images_dir`` (files named by ``image_ids``) or ``images`` (an array aligned with
    them). When both networks take one size, files are read straight at it and shared by the two.
    Call :func:`warm_up` first, or the first batch's seconds include building the models' graphs.

    >>> ids = ["a.jpg", "b.jpg"]
    >>> images = np.zeros((2, 4, 4, 3), "uint8"); images[1] = 200
    >>> classifier = lambda x: x.mean(axis=(1, 2, 3)) / 255          # bright = defective
    >>> segmenter = lambda x: np.ones((len(x), 4, 4, 4)) * [0, 0, 1, 0]  # class 3 everywhere
    >>> table, stats = predict_two_stage(ids, classifier, segmenter, TwoStageSettings(0.5, out_shape=(4, 4)),
    ...                                  images=images)
    >>> table
      ImageId  ClassId EncodedPixels
    0   b.jpg        3          1 16
    >>> stats.segmented_ids, stats.scores.round(2).tolist()
    (['b.jpg'], [0.0, 0.78])
    """
    s, ids = settings, list(image_ids)
    _check_inputs(ids, classifier, s, images_dir, images)
    cls_size, seg_size = _input_size(classifier, s.classifier_size), _input_size(segmenter, s.segmenter_size)
    seconds = dict.fromkeys(["load", "classify", "segment", "postprocess"], 0.0)
    scores, queue = np.full(len(ids), np.nan) if s.gate else None, _SegmentQueue(segmenter, s, seconds)
    # files are read straight at the size of the network(s) that will see every one of them
    direct = (cls_size if s.gate else seg_size) if images_dir is not None and (
        not s.gate or cls_size == seg_size) else None
    if direct is not None:
        load_severstal_images(images_dir, [], direct, s.out_shape)   # builds the reader before the clock starts
    bar = _progress_bar(len(ids), s.progress, unit="image")
    start_all = time.perf_counter()
    for start in range(0, len(ids), s.read_size):
        batch_ids, tick = ids[start:start + s.read_size], time.perf_counter()
        batch = (images[start:start + s.read_size] if images is not None
                 else load_severstal_images(images_dir, batch_ids, direct, s.out_shape))
        seconds["load"] += time.perf_counter() - tick
        chosen, resized = np.arange(len(batch_ids)), (batch if direct is not None else None)
        if s.gate:
            tick = time.perf_counter()
            resized = batch if direct is not None else resize_images(batch, cls_size)
            scores[start:start + len(batch_ids)] = _call(classifier, resized).reshape(len(batch_ids), -1)[:, 0]
            chosen = np.flatnonzero(scores[start:start + len(batch_ids)] >= s.threshold)
            seconds["classify"] += time.perf_counter() - tick
        tick = time.perf_counter()
        if chosen.size:  # images read or resized for the gate serve the segmenter too when both take one size
            same = direct is not None or (resized is not None and cls_size == seg_size)
            sent = resized[chosen] if same else resize_images(np.asarray(batch)[chosen], seg_size)
            seconds["segment"] += time.perf_counter() - tick
            queue.add([batch_ids[i] for i in chosen], sent)
        if bar:
            bar.add(len(batch_ids))
    if queue.images:
        queue.segment(len(queue.images))
    seconds["total"] = time.perf_counter() - start_all
    if not s.gate:
        seconds.pop("classify")
    return merge_tables(queue.frames, ids, s.include_empty), TwoStageStats(len(ids), queue.segmented, scores,
                                                                            seconds, s.gate)
