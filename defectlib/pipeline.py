"""The Severstal two-stage pipeline: a defect classifier gates a segmentation network.

For each image: the classifier gives P(defect); only images whose score is at or
above a threshold (chosen on validation data with :func:`choose_threshold`) go to
the segmentation network, whose per-class probability maps are resized back to
256x1600, thresholded and cleaned (:func:`clean_masks`) and run-length encoded into
a submission table (``ImageId``, ``ClassId``, ``EncodedPixels``: the long format of
``train.csv``, one row per predicted (image, class) mask). Images below the
threshold get no rows: an empty mask for every class.

:func:`predict_two_stage` runs it and times each part; ``gate=False`` segments
every image (the same path without the classifier). :func:`score_submission`
computes the competition metric of a submission against annotations.

Models are any callables from a batch of images ``(n, height, width, 3)``
(float32 RGB 0..255) to scores ``(n,)`` or ``(n, 1)`` (classifier) and
probabilities ``(n, h, w, classes)`` (segmenter); Keras models are called with
``predict_on_batch``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .losses import dice_per_pair
from .rle import SEVERSTAL_SHAPE, rle_decode, rle_encode

CLASSES = (1, 2, 3, 4)
SUBMISSION_COLUMNS = ["ImageId", "ClassId", "EncodedPixels"]

# --------------------------------------------------------------------------- stage 1: the decision threshold


def choose_threshold(y_true: Sequence[int], scores: Sequence[float], min_recall: float = 0.99) -> float:
    """The highest score threshold whose recall of defective images is at least ``min_recall``.

    An image counts as defective when its score is ``>= threshold``. Choose it on
    *validation* data: a higher threshold sends fewer images to segmentation
    (faster, fewer false alarms) but misses more defects; this takes the highest
    one that still finds the required share of the defective images. Ties in the
    scores can make the recall jump past ``min_recall``: it is then higher.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1, 1]
    >>> s = [0.1, 0.3, 0.7, 0.2, 0.6, 0.8, 0.9]
    >>> choose_threshold(y, s, min_recall=0.75)     # 3 of 4 defects at 0.6 or above
    0.6
    >>> choose_threshold(y, s, min_recall=0.99)     # all 4 need 0.2, which also lets 2 clean images through
    0.2
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

    ``sent`` is the share of all images at or above the threshold (those that go
    to segmentation).

    Examples
    --------
    >>> threshold_summary([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9], 0.5)
    {'threshold': 0.5, 'recall': 1.0, 'precision': 0.6667, 'false_positive_rate': 0.5, 'accuracy': 0.75, 'sent': 0.75}
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
    """Threshold probability maps, then drop small regions and classes with too little area.

    ``probabilities`` is ``(height, width, classes)`` or ``(n, height, width,
    classes)``. A pixel is set when its probability is ``>= threshold``; then
    connected regions (8-connected) smaller than ``min_component`` pixels are
    removed, and a class whose remaining area is below ``min_area`` pixels is
    emptied altogether (the rule of many competition entries). Each setting is one
    number or one per class. Returns ``uint8`` 0/1 masks of the same shape, stored
    class by class (each class's mask is one contiguous block in memory, so reading
    one class, as run-length encoding does, is faster). On an image without a
    defect of some class, a single pixel left costs that (image, class) pair its
    whole Dice of 1, so small predicted areas are usually worth dropping.

    Examples
    --------
    >>> p = np.zeros((4, 6, 2)); p[:2, :2, 0] = 0.9; p[3, 5, 0] = 0.8; p[:, 3, 1] = 0.6
    >>> m = clean_masks(p, threshold=0.5, min_component=2)   # the lone pixel of class 1 goes
    >>> int(m[..., 0].sum()), int(m[..., 1].sum())
    (4, 4)
    >>> int(clean_masks(p, threshold=[0.5, 0.7])[..., 1].sum())  # class 2 needs 0.7 now
    0
    >>> int(clean_masks(p, min_area=[5, 5])[..., 0].sum())       # 5 pixels of class 1: kept
    5
    >>> int(clean_masks(p, min_area=[6, 5])[..., 0].sum())       # needs 6: emptied
    0
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
    """For each class, the candidate ``min_area`` of :func:`clean_masks` with the best mean Dice.

    Choose it on *validation* images, defect-free ones included (they are the pairs
    a stray mask costs). ``true_masks`` and ``probabilities`` are ``(n, h, w,
    classes)`` at the same resolution, and the areas are in pixels of that
    resolution (scale them to another one by the ratio of pixel counts). Each
    class's mean Dice over its pairs (:func:`defectlib.losses.kaggle_mean_dice`)
    is computed for every candidate; ties go to the smallest area.

    Examples
    --------
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

    Examples
    --------
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
    """``clean_masks(upsample(probabilities, shape), ...)`` for one ``(h, w, classes)`` map, faster.

    Bilinear interpolation mixes neighbouring values with weights that sum to one,
    so it never exceeds the largest of them: a class whose largest probability is
    below its threshold at the model's resolution is empty at full size too, and
    is neither upsampled nor cleaned (most classes of most images). The result is
    the same as ``clean_masks(upsample(...))``.

    Examples
    --------
    >>> p = np.zeros((64, 400, 4), "float32"); p[10:20, 30:60, 2] = 0.9
    >>> m = full_size_masks(p, min_area=100)
    >>> m.shape, [bool(m[..., k].any()) for k in range(4)]
    ((256, 1600, 4), [False, False, True, False])
    >>> bool(np.array_equal(m, clean_masks(upsample(p), min_area=100)))
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


# --------------------------------------------------------------------------- submission tables


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    """The submission columns in order, as text, int, text (the same dtypes however the table was made)."""
    return table[SUBMISSION_COLUMNS].astype({"ImageId": str, "ClassId": int, "EncodedPixels": str})


def submission_table(image_ids: Sequence[str], masks: Sequence[np.ndarray] | np.ndarray,
                     include_empty: bool = False) -> pd.DataFrame:
    """The submission rows (``ImageId``, ``ClassId``, ``EncodedPixels``) of ``(height, width, classes)`` masks.

    By default only non-empty masks get a row (the long format of ``train.csv``);
    ``include_empty=True`` writes every (image, class) pair, empty ones with an
    empty ``EncodedPixels``.

    Examples
    --------
    >>> m = np.zeros((2, 2, 4), "uint8"); m[0, :, 2] = 1
    >>> submission_table(["a.jpg"], [m])
      ImageId  ClassId EncodedPixels
    0   a.jpg        3       1 1 3 1
    >>> len(submission_table(["a.jpg"], [m], include_empty=True))
    4
    """
    if len(image_ids) != len(masks):
        raise ValueError(f"{len(image_ids)} image ids but {len(masks)} mask stacks")
    rows = []
    for image_id, stack in zip(image_ids, masks):
        for k in range(np.shape(stack)[-1]):
            rle = rle_encode(stack[..., k])
            if rle or include_empty:
                rows.append((image_id, k + 1, rle))
    return _tidy(pd.DataFrame(rows, columns=SUBMISSION_COLUMNS))


def write_submission(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a submission table to CSV (columns ``ImageId,ClassId,EncodedPixels``, no index).

    Examples
    --------
    >>> import tempfile
    >>> path = write_submission(pd.DataFrame({"ImageId": ["a.jpg"], "ClassId": [3], "EncodedPixels": ["1 5"]}),
    ...                         Path(tempfile.mkdtemp()) / "submission.csv")
    >>> path.read_text()
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

    Examples
    --------
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

    Works for ``train.csv`` (:func:`defectlib.severstal.read_train_csv`) and for
    submissions alike; a class without a row (or with an empty one) is empty.

    Examples
    --------
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
    """The competition metric of a submission: mean Dice over every (image, class) pair of ``image_ids``.

    ``truth`` is the annotation table (``read_train_csv``); both tables may omit
    empty masks. Pairs with no row on either side score 1 without decoding.
    ``per_class=True`` returns the mean of each class.

    Examples
    --------
    >>> truth = pd.DataFrame({"ImageId": ["a.jpg"], "ClassId": [1], "EncodedPixels": ["1 2"]})
    >>> empty = pd.DataFrame(columns=["ImageId", "ClassId", "EncodedPixels"])
    >>> score_submission(truth, empty, ["a.jpg", "b.jpg"], (2, 2))   # 7 of 8 pairs right
    0.875
    >>> score_submission(truth, truth, ["a.jpg", "b.jpg"], (2, 2))
    1.0
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


# --------------------------------------------------------------------------- the two stages together


@functools.lru_cache(maxsize=8)
def _reader(size: tuple[int, int], source_size: tuple[int, int]) -> Callable:
    """One compiled TensorFlow function that reads a batch of files at ``size`` (graph, files read in parallel)."""
    import tensorflow as tf

    from .severstal import decode_image_at

    def read(path: tf.Tensor) -> tf.Tensor:
        return decode_image_at(tf.io.read_file(path), size, source_size)

    image = tf.TensorSpec((*size, 3), tf.float32)
    function = tf.function(lambda paths: tf.map_fn(read, paths, fn_output_signature=image, parallel_iterations=8),
                           input_signature=[tf.TensorSpec([None], tf.string)])
    function(tf.constant([], tf.string))   # built and run once now (no files): later calls only read
    return function


def load_images(images_dir: str | Path, image_ids: Sequence[str], size: tuple[int, int] | None = None,
                source_size: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """Read image files into one array ``(n, height, width, 3)``: ``uint8`` as stored, or float32 at ``size``.

    With ``size`` the files, of ``source_size``, are read by
    :func:`defectlib.severstal.decode_image_at` as in training, so a model sees the
    same pixels at training and prediction time (a JPEG 2, 4 or 8 times ``size`` is
    shrunk by the JPEG decoder); one compiled TensorFlow function reads the batch.

    Examples
    --------
    >>> import tempfile
    >>> from defectlib.severstal import list_images, make_synthetic_severstal
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()), n_images=2, height=64, width=400)
    >>> ids = list_images(root / "train_images")
    >>> load_images(root / "train_images", ids).dtype.name
    'uint8'
    >>> load_images(root / "train_images", ids, (32, 200), source_size=(64, 400)).shape
    (2, 32, 200, 3)
    """
    import tensorflow as tf

    paths = [Path(images_dir) / image_id for image_id in image_ids]
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: file not found")
    if size is not None:
        try:
            return _reader(tuple(size), tuple(source_size))(tf.constant([str(p) for p in paths], tf.string)).numpy()
        except tf.errors.InvalidArgumentError:   # a file of another size (or unreadable): name it
            for path in paths:
                image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
                if tuple(image.shape[:2]) != tuple(source_size):
                    raise DataError(f"{path}: {image.shape[0]}x{image.shape[1]} pixels, expected "
                                    f"{source_size[0]}x{source_size[1]}") from None
            raise
    images = [tf.io.decode_image(tf.io.read_file(str(p)), channels=3, expand_animations=False).numpy() for p in paths]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{images_dir}: images of different sizes {sorted(shapes)} in one batch")
    return np.stack(images)


def resize_images(images: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Float32 copies of ``(n, height, width, 3)`` images at ``size`` (bilinear, antialiased, as in training).

    Examples
    --------
    >>> resize_images(np.zeros((2, 256, 1600, 3), "uint8"), (64, 400)).shape
    (2, 64, 400, 3)
    """
    images = np.asarray(images)
    if size is None or images.shape[1:3] == tuple(size):
        return images.astype(np.float32)
    import tensorflow as tf

    return tf.image.resize(images, tuple(size), antialias=True).numpy()


def _input_size(model, given: tuple[int, int] | None) -> tuple[int, int] | None:
    if given is not None:
        return tuple(given)
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4 and None not in shape[1:3]:
        return tuple(shape[1:3])
    return None


def _call(model, x: np.ndarray) -> np.ndarray:
    predict = getattr(model, "predict_on_batch", None)
    return np.asarray(predict(x) if predict is not None else model(x))


def warm_up(model, input_size: tuple[int, int], batch_sizes: Sequence[int] = (8, 1)) -> None:
    """Call a model once per batch size on blank images, so that later timings exclude graph building.

    A Keras model builds (traces) its prediction graph on the first call and again
    for a new batch size, which takes far longer than a prediction.

    Examples
    --------
    >>> calls = []
    >>> warm_up(lambda x: calls.append(x.shape), (4, 8), batch_sizes=(2, 1))
    >>> calls
    [(2, 4, 8, 3), (1, 4, 8, 3)]
    """
    for n in batch_sizes:
        _call(model, np.zeros((n, *input_size, 3), np.float32))


def classifier_scores(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a classifier over a dataset of ``(images, labels)``, in one pass.

    Only labels and scores are kept (not the images), so it works on large
    validation sets; both come from the same batch, so they line up.

    Examples
    --------
    >>> import tensorflow as tf
    >>> x = np.arange(4, dtype="float32").reshape(4, 1, 1, 1)
    >>> ds = tf.data.Dataset.from_tensor_slices((x, [0.0, 0.0, 1.0, 1.0])).shuffle(4).batch(3)
    >>> y, s = classifier_scores(lambda b: b.reshape(len(b), 1) / 3, ds)
    >>> bool(np.all((s > 0.5) == (y == 1)))
    True
    """
    labels, scores = [], []
    for images, y in dataset:
        scores.append(_call(model, np.asarray(images)).reshape(len(y), -1)[:, 0])
        labels.append(np.asarray(y))
    if not labels:
        raise ValueError("the dataset is empty")
    return np.concatenate(labels).astype(int), np.concatenate(scores)


def predict_segmentation(model, dataset, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """True masks (uint8) and predicted probabilities (float32) of a segmentation dataset, in one pass.

    ``dataset`` yields ``(images, masks)`` (:func:`defectlib.severstal.segmentation_dataset`);
    at most ``limit`` images are kept. Both are at the dataset's resolution.

    Examples
    --------
    >>> import tensorflow as tf
    >>> m = np.zeros((3, 2, 2, 4), "float32"); m[0, 0, 0, 1] = 1
    >>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((3, 2, 2, 3), "float32"), m)).batch(2)
    >>> t, p = predict_segmentation(lambda x: np.full((len(x), 2, 2, 4), 0.2), ds, limit=2)
    >>> t.shape, t.dtype.name, p.shape
    ((2, 2, 2, 4), 'uint8', (2, 2, 2, 4))
    """
    truth, probabilities, n = [], [], 0
    for images, masks in dataset:
        truth.append(np.asarray(masks).astype(np.uint8))
        probabilities.append(_call(model, np.asarray(images)).astype(np.float32))
        n += len(truth[-1])
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


def predict_two_stage(
    image_ids: Sequence[str],
    classifier: Callable | None,
    segmenter: Callable,
    threshold: float = 0.5,
    *,
    images_dir: str | Path | None = None,
    images: np.ndarray | None = None,
    gate: bool = True,
    batch_size: int = 8,
    read_batch_size: int | None = None,
    classifier_size: tuple[int, int] | None = None,
    segmenter_size: tuple[int, int] | None = None,
    mask_threshold: float | Sequence[float] = 0.5,
    min_area: int | Sequence[int] = 0,
    min_component: int | Sequence[int] = 0,
    out_shape: tuple[int, int] = SEVERSTAL_SHAPE,
    include_empty: bool = False,
) -> tuple[pd.DataFrame, TwoStageStats]:
    """Run the two-stage pipeline over images; return ``(submission table, stats)``.

    Images come from ``images_dir`` (files named by ``image_ids``, read in
    batches) or from ``images`` (an array aligned with ``image_ids``, resized by
    :func:`resize_images`). Files are read straight at the networks' size, as in
    training (:func:`load_images`; the files have the size ``out_shape``), when every
    image goes to one size: no gate, or ``classifier_size == segmenter_size``. For each
    batch: the classifier scores every image (at ``classifier_size``, by default
    the model's input size); images with a score ``>= threshold`` are segmented (at
    ``segmenter_size``; when it equals ``classifier_size`` the images read for
    the classifier are reused), in full batches of ``batch_size`` gathered across
    the classifier's batches; their probability maps are upsampled to ``out_shape``,
    thresholded and cleaned (:func:`full_size_masks`: :func:`clean_masks` with
    ``mask_threshold``, ``min_area`` and ``min_component``, in pixels of
    ``out_shape``) and encoded (:func:`submission_table`). With ``gate=False`` the
    classifier is not run and every image is segmented. Images are read and
    classified ``read_batch_size`` at a time (default ``batch_size``): a larger batch
    spreads the fixed cost of each call of the reader and the classifier over more
    images. ``stats`` records which images were segmented, all scores, and the
    seconds spent loading, classifying (resizing included, when the images need
    it), segmenting and post-processing (call :func:`warm_up` first, or the first
    batch also pays for building the models' graphs).

    Examples
    --------
    >>> ids = ["a.jpg", "b.jpg"]
    >>> images = np.zeros((2, 4, 4, 3), "uint8"); images[1] = 200
    >>> classifier = lambda x: x.mean(axis=(1, 2, 3)) / 255          # bright = defective
    >>> segmenter = lambda x: np.ones((len(x), 4, 4, 4)) * [0, 0, 1, 0]  # class 3 everywhere
    >>> table, stats = predict_two_stage(ids, classifier, segmenter, 0.5, images=images, out_shape=(4, 4))
    >>> table
      ImageId  ClassId EncodedPixels
    0   b.jpg        3          1 16
    >>> stats.segmented_ids, stats.scores.round(2).tolist()
    (['b.jpg'], [0.0, 0.78])
    """
    ids = list(image_ids)
    if (images is None) == (images_dir is None):
        raise ValueError("give exactly one of images_dir= (files) or images= (an array)")
    if images is not None and len(images) != len(ids):
        raise ValueError(f"{len(ids)} image ids but {len(images)} images")
    if gate and classifier is None:
        raise ValueError("gate=True needs a classifier")
    chunk = batch_size if read_batch_size is None else read_batch_size
    if batch_size < 1 or chunk < 1:
        raise ValueError(f"batch_size={batch_size}, read_batch_size={read_batch_size}: batch sizes must be >= 1")
    cls_size, seg_size = _input_size(classifier, classifier_size), _input_size(segmenter, segmenter_size)
    seconds = dict.fromkeys(["load", "classify", "segment", "postprocess"], 0.0)
    scores = np.full(len(ids), np.nan) if gate else None
    segmented: list[str] = []
    frames: list[pd.DataFrame] = []
    waiting_ids: list[str] = []            # images sent on, resized, waiting for a full batch of the segmenter
    waiting: list[np.ndarray] = []

    def segment(n: int) -> None:
        tick = time.perf_counter()
        probabilities = _call(segmenter, np.stack(waiting[:n]))
        seconds["segment"] += time.perf_counter() - tick
        tick = time.perf_counter()
        masks = [full_size_masks(p, out_shape, mask_threshold, min_area, min_component) for p in probabilities]
        frames.append(submission_table(waiting_ids[:n], masks, include_empty=include_empty))
        segmented.extend(waiting_ids[:n])
        del waiting[:n], waiting_ids[:n]
        seconds["postprocess"] += time.perf_counter() - tick

    # files are read straight at the size of the network(s) that will see every one of them
    first = cls_size if gate else seg_size
    direct = first if images_dir is not None and (not gate or cls_size == seg_size) else None
    if direct is not None:
        _reader(tuple(direct), tuple(out_shape))   # builds the reader's graph before the clock starts
    start_all = time.perf_counter()
    for start in range(0, len(ids), chunk):
        batch_ids = ids[start:start + chunk]
        tick = time.perf_counter()
        if images is not None:
            batch = images[start:start + chunk]
        else:  # the files are the size of the masks to predict, out_shape
            batch = load_images(images_dir, batch_ids, direct, out_shape)
        seconds["load"] += time.perf_counter() - tick
        chosen, resized = np.arange(len(batch_ids)), (batch if direct is not None else None)
        if gate:
            tick = time.perf_counter()
            resized = batch if direct is not None else resize_images(batch, cls_size)
            batch_scores = _call(classifier, resized).reshape(len(batch_ids), -1)[:, 0]
            scores[start:start + len(batch_ids)] = batch_scores
            chosen = np.flatnonzero(batch_scores >= threshold)
            seconds["classify"] += time.perf_counter() - tick
        tick = time.perf_counter()
        if chosen.size:  # images read or resized for the gate serve the segmenter too when both take one size
            same = direct is not None or (resized is not None and cls_size == seg_size)
            waiting.extend(resized[chosen] if same else resize_images(np.asarray(batch)[chosen], seg_size))
            waiting_ids.extend(batch_ids[i] for i in chosen)
        seconds["segment"] += time.perf_counter() - tick
        while len(waiting) >= batch_size:
            segment(batch_size)
    if waiting:
        segment(len(waiting))
    seconds["total"] = time.perf_counter() - start_all
    if include_empty:  # images that were not segmented: an empty row for every class
        done = set(segmented)
        skipped = [i for i in ids if i not in done]
        frames.append(pd.DataFrame([(i, c, "") for i in skipped for c in CLASSES], columns=SUBMISSION_COLUMNS))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUBMISSION_COLUMNS)
    table = _tidy(table).sort_values(["ImageId", "ClassId"], kind="stable").reset_index(drop=True)
    if not gate:
        seconds.pop("classify")
    return table, TwoStageStats(len(ids), segmented, scores, seconds, gate)
