"""The Severstal steel-defect data: finding it, reading the tables, tf.data pipelines.

On disk the data set is a folder with ``train_images/*.jpg`` (1600x256 RGB JPEGs,
grey steel) and ``train.csv`` (one run-length-encoded mask per annotated image and
defect class, see :mod:`defectlib.rle`). :func:`find_severstal` finds such a folder
(a path, ``DEFECTLIB_SEVERSTAL_DIR``, a Kaggle download) or, when there is none,
generates a small synthetic stand-in in exactly the same format and says so loudly.

Tables are pandas data frames:

* the *annotation table* (:func:`read_train_csv`): ``ImageId``, ``ClassId`` (1-4),
  ``EncodedPixels``, one row per annotated (image, class);
* the *defect table* (:func:`defect_table`, :func:`read_defect_csv`): ``ImageId``,
  ``label`` (1 = at least one defect), one row per image.

The pipelines yield float32 images with values 0..255 (RGB, not rescaled: models
rescale in their first layer), labels as float32 0/1 and masks as float32 0/1 with
one channel per defect class.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from .config import banner, current, write_complete
from .errors import DataError, raise_all
from .neu import decode_image_file, without_autotuning
from .rle import SEVERSTAL_SHAPE, parse_rle, rle_encode, rles_to_masks

if TYPE_CHECKING:
    import tensorflow as tf

KAGGLE_COMPETITION = "severstal-steel-defect-detection"
CLASSES = (1, 2, 3, 4)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SYNTHETIC_MARKER = "SYNTHETIC.txt"
"""Written last by :func:`make_synthetic_severstal`: a folder without it is half-written."""

_KAGGLE_HELP = (
    f"Could not download the Kaggle competition {KAGGLE_COMPETITION!r}.",
    "Downloading a competition needs BOTH:",
    "  1. Kaggle credentials: ~/.kaggle/kaggle.json, or the environment variables",
    "     KAGGLE_USERNAME and KAGGLE_KEY, or kagglehub.login() in the notebook;",
    "  2. the competition rules accepted on the Kaggle website:",
    f"     https://www.kaggle.com/competitions/{KAGGLE_COMPETITION}/rules",
    "Using the SYNTHETIC stand-in data set instead.",
)


@dataclass(frozen=True)
class SeverstalData:
    """Where the Severstal files are and where they came from.

    ``source`` is ``'folder'`` (a path or ``DEFECTLIB_SEVERSTAL_DIR``),
    ``'kaggle'`` (downloaded with kagglehub) or ``'synthetic'``. ``train_csv``
    is ``None`` when the folder has images but no ``train.csv``.

    Examples
    --------
    >>> d = SeverstalData(Path("s"), Path("s/train_images"), None, "folder", False)
    >>> d.images_dir.name
    'train_images'
    """

    root: Path
    images_dir: Path
    train_csv: Path | None
    source: str
    synthetic: bool


def _layout(root: Path, source: str) -> SeverstalData:
    if not root.is_dir():
        raise DataError(f"Severstal folder {root} does not exist")
    images_dir = root / "train_images"
    if not images_dir.is_dir():
        raise DataError(f"Severstal folder {root} has no train_images/ folder (expected train_images/*.jpg and train.csv)")
    train_csv = root / "train.csv"
    return SeverstalData(root, images_dir, train_csv if train_csv.is_file() else None, source, source == "synthetic")


def _announce(data: SeverstalData, why: str) -> SeverstalData:
    n = len(list_images(data.images_dir))
    if data.synthetic:
        lines = [
            f"SYNTHETIC Severstal stand-in data: {n} generated images in {data.root}",
            "SYNTHETIC data: numbers are not real results.",
            f"Why: {why}.",
            "For the real data set DEFECTLIB_SEVERSTAL_DIR to a folder with train_images/ and",
            "train.csv, or set up Kaggle credentials and accept the competition rules.",
        ]
    else:
        lines = [f"Severstal data ({data.source}): {n} images in {data.images_dir}", f"Why: {why}."]
        if data.train_csv is None:
            lines.append("No train.csv in that folder: images only, no defect masks.")
    banner(*lines)
    return data


def _default_synthetic_size() -> int:
    return current().pick(full=800, fast=24)


def _synthetic_set() -> SeverstalData:
    n_images, seed = _default_synthetic_size(), 0
    root = current().data_home / "synthetic" / f"severstal-{n_images}-seed{seed}"
    if root.exists() and not (root / SYNTHETIC_MARKER).is_file():
        shutil.rmtree(root)  # the course's own cache, left half-written by an older version
    return _layout(make_synthetic_severstal(root, n_images=n_images, seed=seed), "synthetic")


def find_severstal(path: str | Path | None = None) -> SeverstalData:
    """Find the Severstal data and print a banner saying which source is used and why.

    Order: ``path``; else ``DEFECTLIB_SEVERSTAL_DIR``; else, unless
    ``DEFECTLIB_OFFLINE=1``, a kagglehub download of the competition; else a
    synthetic stand-in generated once into ``DEFECTLIB_DATA_HOME/synthetic/``
    (800 images, 24 in fast mode, seed 0) and reused afterwards. A folder named explicitly must exist and
    hold ``train_images/``, or :class:`~defectlib.errors.DataError` is raised.

    Examples
    --------
    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()) / "s", n_images=3, width=400)
    >>> data = find_severstal(root)  # doctest: +ELLIPSIS
    ==========...
    Severstal data (folder): 3 images in .../s/train_images
    Why: the path given to find_severstal().
    ==========...
    >>> data.train_csv.name, data.synthetic
    ('train.csv', False)
    """
    s = current()
    if path is not None:
        return _announce(_layout(Path(path).expanduser(), "folder"), "the path given to find_severstal()")
    if s.severstal_dir is not None:
        return _announce(_layout(s.severstal_dir, "folder"), "DEFECTLIB_SEVERSTAL_DIR is set")
    if s.offline:
        why = "DEFECTLIB_OFFLINE=1 and DEFECTLIB_SEVERSTAL_DIR is not set"
    else:
        try:
            import kagglehub

            root = Path(kagglehub.competition_download(KAGGLE_COMPETITION))
        except Exception as exc:  # no credentials, rules not accepted, no network, ...
            banner(*_KAGGLE_HELP, f"(kagglehub said: {type(exc).__name__}: {exc})")
            why = "the Kaggle download failed (see the message above)"
        else:
            return _announce(_layout(root, "kaggle"), "downloaded with kagglehub (DEFECTLIB_SEVERSTAL_DIR is not set)")
    return _announce(_synthetic_set(), why)


def list_images(images_dir: str | Path) -> list[str]:
    """Sorted file names of the images (``.jpg``, ``.jpeg``, ``.png``) in a folder.

    Hidden files (names starting with ``.``, such as the ``._name.jpg`` files that
    macOS leaves in a zip archive) are not images and are skipped, as in
    :mod:`defectlib.neu`.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ["b.jpg", "a.jpg", "notes.txt", "._a.jpg"]:
    ...     _ = (folder / name).write_bytes(b"")
    >>> list_images(folder)
    ['a.jpg', 'b.jpg']
    """
    return sorted(p.name for p in Path(images_dir).iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


# ---------------------------------------------------------------------------- tables


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        # Everything as text, and empty fields as "" (not NaN), so nothing is guessed.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (not even a header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    raw.columns = raw.columns.str.strip()
    return raw.apply(lambda column: column.str.strip())


def _first_bad(path: Path, bad: pd.Series, message: str, values: pd.Series | None = None) -> None:
    """Raise a DataError for the first True in ``bad``; file lines count the header as line 1."""
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(f"{path}, line {i + 2}: " + (message if values is None else message.format(values.iloc[i])))


def read_train_csv(path: str | Path, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> pd.DataFrame:
    """Read ``train.csv`` into the tidy annotation table ``ImageId, ClassId, EncodedPixels``.

    Accepts the current long format (``ImageId,ClassId,EncodedPixels``, one row
    per annotation) and the original wide format (``ImageId_ClassId,EncodedPixels``,
    four rows per image, an empty ``EncodedPixels`` meaning "no defect of this
    class": those rows are dropped). Every mask is checked against the image
    ``shape`` (height, width). Problems raise
    :class:`~defectlib.errors.DataError` naming the file and line (the header is
    line 1).

    Examples
    --------
    >>> import tempfile
    >>> csv = Path(tempfile.mkdtemp()) / "train.csv"
    >>> _ = csv.write_text("ImageId_ClassId,EncodedPixels\\na.jpg_1,\\na.jpg_2,\\n"
    ...                    "a.jpg_3,5 10\\na.jpg_4,\\n")
    >>> read_train_csv(csv)
      ImageId  ClassId EncodedPixels
    0   a.jpg        3          5 10
    >>> _ = csv.write_text("ImageId,ClassId,EncodedPixels\\na.jpg,5,5 10\\n")
    >>> read_train_csv(csv)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: .../train.csv, line 2: ClassId '5' is not one of 1, 2, 3, 4
    """
    path = Path(path)
    raw = _read_csv(path)
    columns = set(raw.columns)
    if {"ImageId", "ClassId", "EncodedPixels"} <= columns:
        ids, classes, rles = raw["ImageId"], raw["ClassId"], raw["EncodedPixels"]
        _first_bad(path, rles == "", "EncodedPixels is empty for {!r} (in the long format every row is a defect)", ids)
        keep = pd.Series(True, index=raw.index)
    elif {"ImageId_ClassId", "EncodedPixels"} <= columns:
        parts = raw["ImageId_ClassId"].str.rpartition("_")
        _first_bad(path, (parts[1] == "") | (parts[0] == ""), "ImageId_ClassId {!r} is not '<image>_<class>'", raw["ImageId_ClassId"])
        ids, classes, rles = parts[0], parts[2], raw["EncodedPixels"]
        keep = rles != ""
    else:
        raise DataError(
            f"{path}: expected the columns ImageId,ClassId,EncodedPixels (or the original "
            f"ImageId_ClassId,EncodedPixels), found {','.join(raw.columns)}"
        )
    _first_bad(path, ids == "", "ImageId is empty")
    numbers = pd.to_numeric(classes, errors="coerce")
    _first_bad(path, ~numbers.isin(CLASSES), "ClassId {!r} is not one of 1, 2, 3, 4", classes)
    table = pd.DataFrame({"ImageId": ids, "ClassId": numbers.astype(int), "EncodedPixels": rles})
    duplicated = table.duplicated(["ImageId", "ClassId"])
    if duplicated.any():
        i = int(np.argmax(duplicated.to_numpy()))
        image, cls = table.iloc[i, 0], table.iloc[i, 1]
        first = int(np.argmax(((table.ImageId == image) & (table.ClassId == cls)).to_numpy()))
        raise DataError(f"{path}, line {i + 2}: duplicate of line {first + 2} ({image}, class {cls})")
    for i, (image, cls, rle) in enumerate(table.itertuples(index=False)):
        try:
            parse_rle(rle, shape)
        except ValueError as exc:
            raise DataError(f"{path}, line {i + 2} ({image}, class {cls}): {exc}") from None
    return table[keep].reset_index(drop=True)


def defect_table(images_dir: str | Path, annotations: pd.DataFrame) -> pd.DataFrame:
    """One row per image file in ``images_dir`` (sorted): ``ImageId``, ``label`` (1 = defect).

    An annotated image that is not in the folder raises
    :class:`~defectlib.errors.DataError`.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ["a.jpg", "b.jpg"]:
    ...     _ = (folder / name).write_bytes(b"")
    >>> notes = pd.DataFrame({"ImageId": ["b.jpg"], "ClassId": [3], "EncodedPixels": ["1 5"]})
    >>> defect_table(folder, notes)
      ImageId  label
    0   a.jpg      0
    1   b.jpg      1
    """
    images_dir = Path(images_dir)
    names = pd.Series(list_images(images_dir), dtype=object)
    if names.empty:
        raise DataError(f"{images_dir}: no images (.jpg, .jpeg, .png) in this folder")
    missing = sorted(set(annotations["ImageId"]) - set(names))
    if missing:
        raise DataError(f"{images_dir}: {len(missing)} annotated image(s) are not in the folder, e.g. {missing[:3]}")
    return pd.DataFrame({"ImageId": names, "label": names.isin(annotations["ImageId"]).astype(int)})


def read_defect_csv(path: str | Path) -> pd.DataFrame:
    """Read the course's ``defect_and_no_defect.csv`` (``ImageID,label``): one row per image.

    That file has one ``label`` 1 row per (image, defect class), so an image
    with two defect classes is listed twice; identical rows are collapsed to
    one. Labels must be 0 or 1, and an image listed with both is an error.

    Examples
    --------
    >>> import tempfile
    >>> csv = Path(tempfile.mkdtemp()) / "defects.csv"
    >>> _ = csv.write_text("ImageID,label\\na.jpg,1\\nb.jpg,0\\na.jpg,1\\n")
    >>> read_defect_csv(csv)
      ImageId  label
    0   a.jpg      1
    1   b.jpg      0
    """
    path = Path(path)
    raw = _read_csv(path)
    column = next((c for c in ("ImageID", "ImageId") if c in raw.columns), None)
    if column is None or "label" not in raw.columns:
        raise DataError(f"{path}: expected the columns ImageID,label, found {','.join(raw.columns)}")
    _first_bad(path, raw[column] == "", "ImageID is empty")
    _first_bad(path, ~raw["label"].isin(["0", "1"]), "label {!r} is not 0 or 1", raw["label"])
    table = pd.DataFrame({"ImageId": raw[column], "label": raw["label"].astype(int)})
    labels_per_image = table.groupby("ImageId", sort=False)["label"].nunique()
    if (labels_per_image > 1).any():
        image = labels_per_image.index[int(np.argmax((labels_per_image > 1).to_numpy()))]
        lines = (np.flatnonzero(table["ImageId"] == image) + 2).tolist()
        raise DataError(f"{path}: {image} is listed with both labels 0 and 1 (lines {lines})")
    return table.drop_duplicates().reset_index(drop=True)


def _share_out(n: int, fractions: Sequence[float], order: tuple[int, int] = (2, 1)) -> np.ndarray:
    """Rows of one label per part: in proportion, then at least one for training, then for the parts in ``order``.

    Examples
    --------
    >>> [_share_out(n, (0.7, 0.15, 0.15)).tolist() for n in (1, 2, 3, 17)]
    [[1, 0, 0], [1, 0, 1], [1, 1, 1], [12, 3, 2]]
    """
    exact = np.asarray(fractions, dtype=float) * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact, kind="stable")[: n - counts.sum()]] += 1  # largest remainders
    for part in (0, *order):  # training first: it must see every label
        if counts[part] == 0 and counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[part] += 1
    return counts


def split_table(
    table: pd.DataFrame,
    label_col: str = "label",
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split rows into train, validation and test sets, stratified by ``label_col``.

    Deterministic for a seed (default: ``current().seed``). Each part keeps the
    table's row order. The split is scikit-learn's stratified ``train_test_split``.
    A table too small for it (a label with only a few rows, as in a handful of
    images) is split label by label instead: each label's rows are shared out in
    proportion to ``fractions``, with at least one row for training, then for test
    and validation while the label has rows to spare. That fallback warns
    (``UserWarning``), naming the counts that forced it: numbers measured on parts of
    a few images mean little. A :class:`~defectlib.errors.DataError` only when no
    split gives every part a row and the training part every label.

    Examples
    --------
    >>> table = pd.DataFrame({"ImageId": [f"{i}.jpg" for i in range(20)], "label": [0, 1] * 10})
    >>> train, val, test = split_table(table, seed=0)
    >>> len(train), len(val), len(test), test["label"].tolist()
    (14, 3, 3, [0, 1, 0])
    >>> import warnings
    >>> small = pd.DataFrame({"ImageId": [f"{i}.jpg" for i in range(20)], "label": [0] * 3 + [1] * 17})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     parts = split_table(small, seed=0)
    >>> [(len(p), int(p["label"].sum())) for p in parts], "label 0: 3 rows" in str(caught[0].message)
    ([(13, 12), (4, 3), (3, 2)], True)
    """
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions {fractions}: expected three positive numbers that sum to 1")
    seed = current().seed if seed is None else seed
    from sklearn.model_selection import train_test_split

    _, val_part, test_part = fractions
    try:
        train, rest = train_test_split(table, train_size=fractions[0], stratify=table[label_col], random_state=seed)
        val, test = train_test_split(
            rest, test_size=test_part / (val_part + test_part), stratify=rest[label_col], random_state=seed
        )
        parts = (train, val, test)
    except ValueError as exc:
        parts = _split_by_label(table, label_col, fractions, seed, reason=str(exc))
    return tuple(part.sort_index().reset_index(drop=True) for part in parts)  # type: ignore[return-value]


def _split_by_label(table: pd.DataFrame, label_col: str, fractions: tuple[float, float, float], seed: int,
                    reason: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The fallback of :func:`split_table` for tables too small for a stratified split."""
    import warnings

    rng = np.random.default_rng(seed)
    picked: list[list] = [[], [], []]
    labels = table[label_col].value_counts().sort_index()
    for label in labels.sort_values(kind="stable").index:  # the rarest labels first: they decide what is possible
        rows = rng.permutation(table.index[table[label_col] == label].to_numpy())
        order = tuple(sorted((2, 1), key=lambda p: len(picked[p])))  # a spare row goes to the smaller part
        ends = np.cumsum(_share_out(len(rows), fractions, order))
        for part, chunk in zip(picked, np.split(rows, ends[:2])):
            part.extend(chunk.tolist())
    parts = tuple(table.loc[rows] for rows in picked)
    counts = ", ".join(f"label {label}: {n} rows" for label, n in labels.items())
    if any(len(part) == 0 for part in parts) or parts[0][label_col].nunique() < len(labels):
        raise DataError(f"cannot split {len(table)} rows stratified by {label_col!r} into {fractions} ({counts}): "
                        "too few rows to give every part one and the training part every label; add images")
    warnings.warn(f"split_table: {counts} is too few for a stratified split into {fractions} ({reason}); "
                  f"split label by label instead: {'/'.join(str(len(p)) for p in parts)} train/validation/test "
                  "rows. Numbers measured on parts this small mean little.", UserWarning, stacklevel=3)
    return parts  # type: ignore[return-value]


# ---------------------------------------------------------------------------- image files


def _image_problem(path: Path, size: tuple[int, int] | None) -> str | None:
    try:
        image = decode_image_file(path, cv2.IMREAD_GRAYSCALE)
    except DataError as error:
        return str(error)
    if size is not None and image.shape != tuple(size):
        return f"{path}: image is {image.shape[1]}x{image.shape[0]}, expected {size[1]}x{size[0]} (width x height)"
    return None


def check_images(paths: Sequence[str | Path], size: tuple[int, int] | None = SEVERSTAL_SHAPE) -> None:
    """Decode every image (OpenCV, in a thread pool) and raise one DataError naming every bad file.

    Catches missing, empty, non-image and truncated files (see
    :func:`defectlib.neu.decode_image_file`) and, unless ``size`` is ``None``,
    images whose (height, width) is not ``size``. Bytes after a JPEG's end
    marker and a PNG saved under ``.jpg`` are fine: TensorFlow decodes both.

    Examples
    --------
    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "x.jpg"
    >>> _ = bad.write_bytes(b"")
    >>> check_images([bad])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: Image files: 1 problem(s); fix them and try again:
      .../x.jpg: empty file (0 bytes)
    """
    with ThreadPoolExecutor() as pool:
        problems = [p for p in pool.map(lambda p: _image_problem(Path(p), size), paths) if p]
    raise_all(problems, "Image files")


# ---------------------------------------------------------------------------- tf.data


def jpeg_scale(source_size: tuple[int, int], size: tuple[int, int]) -> int:
    """The factor (1, 2, 4 or 8) that shrinks ``source_size`` to exactly ``size``, or 0 when there is none.

    Examples
    --------
    >>> jpeg_scale((256, 1600), (64, 400)), jpeg_scale((256, 1600), (256, 1600)), jpeg_scale((256, 1600), (64, 384))
    (4, 1, 0)
    """
    (height, width), (h, w) = tuple(source_size), tuple(size)
    return next((s for s in (1, 2, 4, 8) if (height, width) == (h * s, w * s)), 0)


def decode_image_at(
    contents: tf.Tensor, size: tuple[int, int], source_size: tuple[int, int] | None = None
) -> tf.Tensor:
    """Decode an image file's bytes to float32 RGB (0..255) of ``size`` (height, width).

    The one way this course reads Severstal images, in training
    (:func:`classifier_dataset`, :func:`segmentation_dataset`) and prediction
    (:func:`defectlib.pipeline.load_images`), so a model sees the same pixels in
    both. A JPEG file of ``source_size`` that is exactly 2, 4 or 8 times ``size``
    is decoded straight at the smaller size by the JPEG decoder itself (it keeps
    the low frequencies of each 8x8 block: smooth, and a third to a half of the
    time of decoding in full and resizing, measured by
    ``benchmarks/severstal_pipeline.py``). Any other file is decoded in full and resized
    (bilinear, antialiased), unless it already has ``size``. Works eagerly and in
    ``tf.data``.

    Examples
    --------
    >>> import tensorflow as tf
    >>> jpeg = tf.io.encode_jpeg(tf.fill((256, 1600, 3), tf.constant(200, tf.uint8)))
    >>> image = decode_image_at(jpeg, (64, 400), (256, 1600))
    >>> image.shape, image.dtype.name, round(float(tf.reduce_mean(image)))
    (TensorShape([64, 400, 3]), 'float32', 200)
    """
    import tensorflow as tf

    size = tuple(size)
    scale = jpeg_scale(source_size, size) if source_size is not None else 0

    def full() -> tf.Tensor:
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
        if scale == 1:
            return tf.cast(image, tf.float32)
        return tf.image.resize(image, size, antialias=True)

    if scale > 1:  # a file that is not a JPEG (a PNG named .jpg, say) takes the full path
        image = tf.cond(tf.io.is_jpeg(contents),
                        lambda: tf.cast(tf.io.decode_jpeg(contents, channels=3, ratio=scale), tf.float32), full)
    else:
        image = full()
    return tf.ensure_shape(image, (*size, 3))


def _load_image(path: tf.Tensor, size: tuple[int, int], source_size: tuple[int, int] | None) -> tf.Tensor:
    import tensorflow as tf

    return decode_image_at(tf.io.read_file(path), size, source_size)


def _finish(
    ds: tf.data.Dataset, n: int, batch_size: int, shuffle: bool, seed: int | None, load: Callable[..., tuple]
) -> tf.data.Dataset:
    import tensorflow as tf

    if shuffle:
        ds = ds.shuffle(n, seed=current().seed if seed is None else seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return without_autotuning(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def classifier_dataset(
    images_dir: str | Path,
    table: pd.DataFrame,
    image_size: tuple[int, int] = SEVERSTAL_SHAPE,
    batch_size: int = 16,
    shuffle: bool = False,
    seed: int | None = None,
    label_col: str = "label",
    source_size: tuple[int, int] | None = SEVERSTAL_SHAPE,
) -> tf.data.Dataset:
    """Batches of (image float32 0..255 RGB of ``image_size``, label float32) for a defect classifier.

    ``table`` has ``ImageId`` and ``label_col``; its order is kept unless
    ``shuffle`` (training only). Every file is checked first with
    :func:`check_images`: it must be ``source_size`` (height, width), or any
    size when ``source_size`` is ``None`` (it is resized anyway). Images are
    read with :func:`decode_image_at`.

    Examples
    --------
    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()), n_images=4, height=64, width=400)
    >>> table = defect_table(root / "train_images", read_train_csv(root / "train.csv"))
    >>> ds = classifier_dataset(root / "train_images", table, (32, 200), batch_size=4, source_size=(64, 400))
    >>> images, labels = next(iter(ds))
    >>> images.shape, labels.dtype.name
    (TensorShape([4, 32, 200, 3]), 'float32')
    """
    import tensorflow as tf

    if table.empty:
        raise DataError("classifier_dataset: the table has no rows")
    paths = [str(Path(images_dir) / name) for name in table["ImageId"]]
    check_images(paths, source_size)
    size, source = tuple(image_size), None if source_size is None else tuple(source_size)
    ds = tf.data.Dataset.from_tensor_slices((paths, table[label_col].to_numpy(np.float32)))
    return _finish(ds, len(paths), batch_size, shuffle, seed, lambda p, y: (_load_image(p, size, source), y))


def check_annotations(annotations: pd.DataFrame, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> pd.DataFrame:
    """Check an annotation table row by row; return it with ``ClassId`` as integers.

    ``ClassId`` may be text (``"3"``, as ``pd.read_csv(..., dtype=str)`` gives).
    One :class:`~defectlib.errors.DataError` names every bad row (by the table's
    index and its image): a ``ClassId`` that is not 1, 2, 3 or 4, a second row
    for the same (image, class), or an ``EncodedPixels`` that is not a valid
    mask of ``shape`` (height, width).

    Examples
    --------
    >>> notes = pd.DataFrame({"ImageId": ["a.jpg", "a.jpg"], "ClassId": ["3", "7"],
    ...                       "EncodedPixels": ["1 5", "1 5"]})
    >>> check_annotations(notes.iloc[:1]).dtypes["ClassId"].name
    'int64'
    >>> check_annotations(notes)
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: Annotation table: 1 problem(s); fix them and try again:
      row 1 (a.jpg): ClassId '7' is not one of 1, 2, 3, 4
    """
    missing = {"ImageId", "ClassId", "EncodedPixels"} - set(annotations.columns)
    if missing:
        raise DataError(f"annotation table: missing column(s) {', '.join(sorted(missing))} (expected "
                        "ImageId, ClassId, EncodedPixels, as read_train_csv gives)")
    numbers = pd.to_numeric(annotations["ClassId"].astype(str).str.strip(), errors="coerce")
    valid = numbers.isin(CLASSES)
    problems = [f"row {i} ({image}): ClassId {cls!r} is not one of 1, 2, 3, 4"
                for i, image, cls in zip(annotations.index[~valid], annotations["ImageId"][~valid],
                                         annotations["ClassId"][~valid])]
    table = annotations.assign(ClassId=numbers.where(valid, 0).astype(np.int64))
    first_row = {}
    for i, image, cls, rle in zip(table.index, table["ImageId"], table["ClassId"], table["EncodedPixels"]):
        if cls == 0:
            continue
        if (image, cls) in first_row:
            problems.append(f"row {i} ({image}, class {cls}): duplicate of row {first_row[image, cls]}")
        first_row.setdefault((image, cls), i)
        try:
            parse_rle(rle, shape)
        except ValueError as exc:
            problems.append(f"row {i} ({image}, class {cls}): {exc}")
    raise_all(problems, "Annotation table")
    return table


def segmentation_dataset(
    images_dir: str | Path,
    annotations: pd.DataFrame,
    image_ids: Sequence[str],
    mask_size: tuple[int, int] = (128, 800),
    batch_size: int = 8,
    shuffle: bool = False,
    seed: int | None = None,
    source_size: tuple[int, int] = SEVERSTAL_SHAPE,
) -> tf.data.Dataset:
    """Batches of (image float32 0..255 RGB, mask float32 0/1 with 4 channels), both of ``mask_size``.

    Masks are decoded from ``annotations`` (the tidy table of
    :func:`read_train_csv`) on the fly at ``source_size`` (the size of the image
    files, checked first) and shrunk with nearest neighbour (OpenCV
    ``INTER_NEAREST``: small pixel (i, j) is full pixel
    (floor(i * H / h), floor(j * W / w))); images are read with
    :func:`decode_image_at`. Images without annotations get
    empty masks. Order is ``image_ids`` unless ``shuffle``. The annotations are
    checked first with :func:`check_annotations`, so a bad row is named before
    any batch is made.

    Examples
    --------
    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()), n_images=4, height=64, width=400)
    >>> notes = read_train_csv(root / "train.csv")
    >>> ds = segmentation_dataset(root / "train_images", notes, list_images(root / "train_images"),
    ...                           (32, 200), batch_size=2, source_size=(64, 400))
    >>> images, masks = next(iter(ds))
    >>> images.shape, masks.shape, masks.dtype.name
    (TensorShape([2, 32, 200, 3]), TensorShape([2, 32, 200, 4]), 'float32')
    """
    import tensorflow as tf

    ids = list(image_ids)
    if not ids:
        raise DataError("segmentation_dataset: no image ids")
    paths = [str(Path(images_dir) / name) for name in ids]
    check_images(paths, source_size)
    annotations = check_annotations(annotations, tuple(source_size))
    rles = (
        annotations.pivot(index="ImageId", columns="ClassId", values="EncodedPixels")
        .reindex(index=ids, columns=list(CLASSES))
        .fillna("")
        .to_numpy(str)
    )
    height, width = mask_size

    def decode(row: np.ndarray) -> np.ndarray:
        masks = rles_to_masks([r.decode() for r in row], tuple(source_size))
        return cv2.resize(masks, (width, height), interpolation=cv2.INTER_NEAREST).astype(np.float32)

    def load(path: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        masks = tf.ensure_shape(tf.numpy_function(decode, [row], tf.float32), (height, width, len(CLASSES)))
        return _load_image(path, (height, width), tuple(source_size)), masks

    ds = tf.data.Dataset.from_tensor_slices((paths, rles))
    return _finish(ds, len(paths), batch_size, shuffle, seed, load)


# ---------------------------------------------------------------------------- synthetic data


def _steel(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A grey steel texture: vertical rolling streaks, slow brightness changes across the strip, and noise."""
    streaks = rng.normal(0, 1, (max(height // 40, 2), width)).astype(np.float32)
    streaks = cv2.resize(streaks, (width, height), interpolation=cv2.INTER_CUBIC) * rng.uniform(3, 7)
    x = np.linspace(0, 1, width, dtype=np.float32)
    across = rng.uniform(5, 15) * np.sin(2 * np.pi * (rng.uniform(0.3, 1.5) * x + rng.uniform()))
    down = rng.uniform(-8, 8) * np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    noise = rng.normal(0, 5, (height, width)).astype(np.float32)
    return rng.uniform(75, 140) + streaks + across[None, :] + down + noise


def _quad(mask: np.ndarray, x_top: float, x_bottom: float, top: float, bottom: float,
          w_top: float, w_bottom: float) -> None:
    """Fill a (slanted) band from row ``top`` to row ``bottom`` centred at ``x_top`` and ``x_bottom``."""
    points = [(x_top - w_top / 2, top), (x_top + w_top / 2, top),
              (x_bottom + w_bottom / 2, bottom), (x_bottom - w_bottom / 2, bottom)]
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)


def _blob(mask: np.ndarray, rng: np.random.Generator, x: float, y: float, rx: float, ry: float, n: int = 14) -> None:
    """Fill an irregular polygon around (x, y) with radii about ``rx`` across and ``ry`` down."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    jitter = rng.uniform(0.7, 1.25, n)
    points = np.stack([x + rx * jitter * np.cos(angles), y + ry * jitter * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)


def _defect(cls: int, rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, float]:
    """The mask of one defect of class ``cls`` and how much it changes the brightness.

    Shapes follow the real annotations (coarse polygons; sizes measured with
    :func:`mask_statistics` on real masks): 1 a few small boxes around pits, mostly
    in one column; 2 one narrow band down most of the height; 3 mostly narrow
    vertical bands over the whole height (sometimes one long irregular scratch
    patch); 4 one to three large irregular blotches.
    """
    mask = np.zeros((height, width), np.uint8)
    sx, sy = width / 1600, height / 256
    x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
    if cls == 1:  # a few small boxes around pits, mostly stacked in one column
        spread = 25 * sx if rng.random() < 0.6 else 300 * sx
        for _ in range(int(rng.choice([1, 1, 2, 2, 2, 3, 4, 5, 6, 8]))):
            bx = float(np.clip(x + rng.normal(0, spread), 0, width - 1))
            by = float(rng.uniform(0, height - 1))
            bw, bh = rng.uniform(15, 45) * sx, rng.uniform(25, 70) * sy
            _quad(mask, bx + rng.normal(0, 3 * sx), bx, by - bh / 2, by + bh / 2, bw, bw * rng.uniform(0.7, 1.3))
        change = -rng.uniform(55, 75)
    elif cls == 2:  # one narrow band down most of the height
        length = rng.uniform(0.6, 1.0) * height
        top = rng.uniform(0, height - length)
        w = rng.uniform(10, 22) * sx
        _quad(mask, x, x + rng.normal(0, 5 * sx), top, top + length, w, w * rng.uniform(0.6, 1.2))
        change = -rng.uniform(50, 70)
    elif cls == 3 and rng.random() < 0.75:  # narrow vertical bands over the whole height
        for _ in range(int(rng.choice([1, 1, 2, 2, 3, 3, 4, 6]))):
            bx = float(np.clip(x + rng.normal(0, 250 * sx), 0, width - 1))
            length = height * (1.0 if rng.random() < 0.7 else rng.uniform(0.4, 1.0))
            top = 0.0 if rng.random() < 0.5 else height - length
            w = float(np.clip(rng.lognormal(np.log(24), 0.6), 8, 150)) * sx
            _quad(mask, bx, bx + rng.normal(0, 10 * sx), top - 1, top + length, w, w * rng.uniform(0.6, 1.2))
        change = rng.choice([-1, 1]) * rng.uniform(50, 70)
    elif cls == 3:  # a long irregular scratch patch
        _blob(mask, rng, x, y, rng.uniform(150, 450) * sx, rng.uniform(25, 80) * sy, n=9)
        change = rng.choice([-1, 1]) * rng.uniform(50, 70)
    else:  # cls == 4: one to three large irregular blotches
        for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
            _blob(mask, rng, x, y, rng.uniform(50, 170) * sx, rng.uniform(45, 130) * sy)
            x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
        change = -rng.uniform(65, 85)
    if not mask.any():  # never an empty mask: keep the anchor pixel
        mask[int(y), int(x)] = 1
    return mask, float(change)


def make_synthetic_severstal(
    root: str | Path,
    n_images: int | None = None,
    seed: int = 0,
    height: int = 256,
    width: int = 1600,
) -> Path:
    """Write a synthetic data set in the real Severstal format and return ``root``.

    ``root/train_images/<9 hex digits>.jpg`` are grey steel textures (RGB JPEG)
    and ``root/train.csv`` is in the long format. The shares follow Kaggle's
    training set: 47 % of the images are defect-free, 3.4 % have two defect
    classes, the others one; of the masks two thirds are class 3, about 16 %
    class 1, 12 % class 4 and 5 % class 2. Masks are filled polygons whose area, number of
    pieces and height were tuned to real masks (:func:`mask_statistics`): 1 a few
    small dark boxes, mostly in one column; 2 one narrow dark band down most of
    the height; 3 narrow dark or bright vertical bands over the whole height, or
    (one in four) a long irregular patch; 4 one to three large dark blotches. The
    steel has vertical rolling streaks. Same seed, same bytes. ``n_images``
    defaults to 800 (24 in fast mode). The set is written into a temporary folder,
    ``SYNTHETIC.txt`` last, and renamed to ``root`` when complete; a complete
    ``root`` is reused as it is.

    Examples
    --------
    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()) / "s", n_images=5, height=64, width=400)
    >>> sorted(p.name for p in root.iterdir())
    ['SYNTHETIC.txt', 'train.csv', 'train_images']
    >>> len(list_images(root / "train_images"))
    5
    """
    n_images = _default_synthetic_size() if n_images is None else n_images

    def write(folder: Path) -> None:
        rng = np.random.default_rng(seed)
        images_dir = folder / "train_images"
        images_dir.mkdir()
        ids: list[str] = []
        while len(ids) < n_images:
            name = f"{int(rng.integers(16**9)):09x}.jpg"
            if name not in ids:
                ids.append(name)
        # Shares as in Kaggle's training set (defect_and_no_defect.csv): 47 % defect-free, 3.4 % with two
        # classes (6.4 % of the defective images); masks 73 % class 3, 13 % class 1, 11 % class 4, 3 % class 2.
        n_free, n_two = round(0.47 * n_images), round(0.034 * n_images)
        one = [3, 1, 3, 4, 3, 2, 3, 3, 1, 3, 4, 3, 3, 3, 1, 3, 3, 3, 3, 3]
        two = [(3, 4), (1, 3), (3, 4), (3, 4), (1, 3), (3, 4), (1, 2)]
        plans = [()] * n_free + [(one[i % len(one)],) for i in range(n_images - n_free - n_two)]
        plans += [two[i % len(two)] for i in range(n_two)]
        rows = []
        for i in rng.permutation(n_images):
            name, image = ids[i], _steel(rng, height, width)
            for cls in plans[i]:
                mask, change = _defect(cls, rng, height, width)
                image += mask * (change + rng.normal(0, 6, mask.shape)).astype(np.float32)
                rows.append((name, cls, rle_encode(mask)))
            grey = np.clip(image, 0, 255).astype(np.uint8)
            cv2.imwrite(str(images_dir / name), np.dstack([grey] * 3), [cv2.IMWRITE_JPEG_QUALITY, 90])
        table = pd.DataFrame(rows, columns=["ImageId", "ClassId", "EncodedPixels"])
        table.sort_values(["ImageId", "ClassId"]).to_csv(folder / "train.csv", index=False)
        (folder / SYNTHETIC_MARKER).write_text(
            f"SYNTHETIC stand-in for the Severstal data, made by defectlib.severstal.make_synthetic_severstal"
            f"(n_images={n_images}, seed={seed}, height={height}, width={width}).\n"
            "Numbers computed on it are not real results.\n"
        )

    # Written whole, then renamed (write_complete): parallel notebooks never read a half-written set.
    return write_complete(root, write, SYNTHETIC_MARKER)


# ---------------------------------------------------------------------------- statistics


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    p25, median, p75 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return float(median), float(p25), float(p75)


def mask_statistics(
    annotations: pd.DataFrame, image_ids: Sequence[str] | None = None, shape: tuple[int, int] = SEVERSTAL_SHAPE
) -> pd.DataFrame:
    """Statistics of a set of defect masks, to hold one data set against another.

    ``annotations`` is the tidy annotation table (:func:`read_train_csv`);
    ``image_ids`` lists every image it covers, defect-free ones included (with
    ``None`` only the annotated images are known, and the defect-free share is
    NaN). Rows are (``statistic``, ``class``), class ``'all'`` or ``'1'`` to
    ``'4'``; column ``value`` is a count, a share or (for a distribution over the
    masks) the median, ``p25`` and ``p75`` the quartiles of a distribution (NaN
    otherwise). Per mask: ``area`` (pixels set), ``components`` (8-connected
    regions), ``x centre`` (mean column as a share of the width: where the mask
    sits along the strip), ``rows spanned`` (bounding-box height as a share of
    the image height). Empty encodings (no defect) count as no mask. Combine
    several with ``pd.concat({...}, axis=1)``.

    Examples
    --------
    >>> notes = pd.DataFrame({"ImageId": ["a.jpg", "a.jpg", "b.jpg"], "ClassId": [1, 3, 3],
    ...                       "EncodedPixels": ["1 1 3 1", "29 4", "1 8"]})
    >>> stats = mask_statistics(notes, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], shape=(4, 8))
    >>> stats.loc["defect-free images (share)", "value"].item()
    0.5
    >>> stats.loc[("area (pixels)", "3")].tolist()
    [6.0, 5.0, 7.0]
    >>> [float(stats.loc[(name, "1"), "value"]) for name in ["components", "rows spanned (share of height)"]]
    [2.0, 0.75]
    """
    from skimage.measure import label

    from .rle import rle_decode  # imported here to keep this report apart from the readers

    missing = [] if image_ids is None else sorted(set(annotations["ImageId"]) - set(image_ids))
    if missing:
        raise DataError(f"mask_statistics: {len(missing)} annotated image(s) are not in image_ids, e.g. {missing[:3]}")
    height, width = shape
    measures = []
    for image_id, cls, rle in zip(annotations["ImageId"], annotations["ClassId"], annotations["EncodedPixels"]):
        mask = rle_decode(rle, shape)
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            continue
        n_components = int(label(mask, connectivity=2).max())  # connectivity 2: the 8 neighbours
        spanned = (rows.max() - rows.min() + 1) / height
        measures.append((image_id, int(cls), rows.size, n_components, (cols.mean() + 0.5) / width, spanned))
    per_mask = pd.DataFrame(measures, columns=["image", "class", "area", "components", "x", "rows"])
    classes_per_image = per_mask.groupby("image")["class"].nunique()
    n_images = len(set(image_ids)) if image_ids is not None else len(classes_per_image)
    free = (n_images - len(classes_per_image)) / n_images if image_ids is not None and n_images else np.nan
    two = float((classes_per_image >= 2).mean()) if len(classes_per_image) else np.nan
    rows_out: dict[tuple[str, str], tuple[float, float, float]] = {
        ("images", "all"): (n_images, np.nan, np.nan),
        ("defect-free images (share)", "all"): (free, np.nan, np.nan),
        ("defective images with 2+ classes (share)", "all"): (two, np.nan, np.nan),
    }
    for key in ["all", *map(str, CLASSES)]:
        part = per_mask if key == "all" else per_mask[per_mask["class"] == int(key)]
        rows_out[("masks", key)] = (len(part), np.nan, np.nan)
        rows_out[("masks (share)", key)] = (len(part) / len(per_mask) if len(per_mask) else np.nan, np.nan, np.nan)
        for name, column in [("area (pixels)", "area"), ("components", "components"),
                             ("x centre (share of width)", "x"), ("rows spanned (share of height)", "rows")]:
            rows_out[(name, key)] = _quartiles(part[column].to_numpy())
    index = pd.MultiIndex.from_tuples(list(rows_out), names=["statistic", "class"])
    return pd.DataFrame(list(rows_out.values()), index=index, columns=["value", "p25", "p75"])
