"""The Severstal steel-defect data (``train_images/*.jpg`` and a run-length ``train.csv``): find, read, split, load.

Pipelines yield float32 RGB images 0..255 (models rescale), float32 0/1 labels and 0/1 masks, one channel per class.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from .config import banner, current
from .errors import DataError, raise_all
from .images import check_images, list_images, load_image_tensor, without_autotuning
from .rle import SEVERSTAL_SHAPE, parse_rle, rle_decode, rles_to_masks
from .synthetic import SYNTHETIC_MARKER, default_synthetic_size, make_synthetic_severstal

if TYPE_CHECKING:
    import tensorflow as tf

KAGGLE_COMPETITION = "severstal-steel-defect-detection"
CLASSES = (1, 2, 3, 4)

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
    """Where the Severstal files are (``train_csv`` may be ``None``) and whence: ``source`` folder, kaggle or synthetic.

    >>> SeverstalData(Path("s"), Path("s/train_images"), None, "folder", False).images_dir.name
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
        lines = [f"SYNTHETIC Severstal stand-in data: {n} generated images in {data.root}",
                 "SYNTHETIC data: numbers are not real results.", f"Why: {why}.",
                 "For the real data set DEFECTLIB_SEVERSTAL_DIR to a folder with train_images/ and",
                 "train.csv, or set up Kaggle credentials and accept the competition rules."]
    else:
        lines = [f"Severstal data ({data.source}): {n} images in {data.images_dir}", f"Why: {why}."]
        if data.train_csv is None:
            lines.append("No train.csv in that folder: images only, no defect masks.")
    banner(*lines)
    return data


def find_severstal(path: str | Path | None = None) -> SeverstalData:
    """Find the Severstal data (``path``, ``DEFECTLIB_SEVERSTAL_DIR``, Kaggle, a synthetic stand-in) and say which.

    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()) / "s", n_images=3, width=400)
    >>> find_severstal(root).source  # doctest: +ELLIPSIS
    ==========...
    Severstal data (folder): 3 images in .../s/train_images
    ...
    'folder'
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
    n_images, seed = default_synthetic_size(), 0
    root = s.data_home / "synthetic" / f"severstal-{n_images}-seed{seed}"
    if root.exists() and not (root / SYNTHETIC_MARKER).is_file():
        shutil.rmtree(root)  # the course's own cache, left half-written by an older version
    return _announce(_layout(make_synthetic_severstal(root, n_images=n_images, seed=seed), "synthetic"), why)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)  # all text, empty fields "": nothing guessed
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (not even a header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    raw.columns = raw.columns.str.strip()
    return raw.apply(lambda column: column.str.strip())


def _first_bad(path: Path, bad: pd.Series, message: str, values: pd.Series | None = None) -> None:
    """Raise a DataError for the first True in ``bad`` (the header is line 1)."""
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(f"{path}, line {i + 2}: " + (message if values is None else message.format(values.iloc[i])))


def read_train_csv(path: str | Path, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> pd.DataFrame:
    """Read ``train.csv`` (long or original wide format) into the checked table ``ImageId, ClassId, EncodedPixels``.

    >>> import tempfile
    >>> csv = Path(tempfile.mkdtemp()) / "train.csv"
    >>> _ = csv.write_text("ImageId_ClassId,EncodedPixels\\na.jpg_1,\\na.jpg_3,5 10\\n")
    >>> read_train_csv(csv)
      ImageId  ClassId EncodedPixels
    0   a.jpg        3          5 10
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
        raise DataError(f"{path}: expected the columns ImageId,ClassId,EncodedPixels (or the original "
                        f"ImageId_ClassId,EncodedPixels), found {','.join(raw.columns)}")
    _first_bad(path, ids == "", "ImageId is empty")
    table = pd.DataFrame({"ImageId": ids, "ClassId": classes, "EncodedPixels": rles})
    table.index += 2  # the lines of the file: the header is line 1
    table = check_annotations(table, shape, what=str(path), row="line")
    return table[keep.to_numpy()].reset_index(drop=True)


def defect_table(images_dir: str | Path, annotations: pd.DataFrame) -> pd.DataFrame:
    """One row per image file in ``images_dir`` (sorted): ``ImageId``, ``label`` (1 = defect).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()); _ = [(folder / name).write_bytes(b"") for name in ("a.jpg", "b.jpg")]
    >>> defect_table(folder, pd.DataFrame({"ImageId": ["b.jpg"]}))["label"].tolist()
    [0, 1]
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
    """Read the course's ``defect_and_no_defect.csv`` (``ImageID,label``), one row per image (repeats collapsed).

    >>> import tempfile
    >>> csv = Path(tempfile.mkdtemp()) / "defects.csv"
    >>> _ = csv.write_text("ImageID,label\\na.jpg,1\\nb.jpg,0\\na.jpg,1\\n")
    >>> read_defect_csv(csv).to_dict("list")
    {'ImageId': ['a.jpg', 'b.jpg'], 'label': [1, 0]}
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
    """Rows per part: in proportion, then at least one for training, then for the parts in ``order``."""
    exact = np.asarray(fractions, dtype=float) * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact, kind="stable")[: n - counts.sum()]] += 1  # largest remainders
    for part in (0, *order):  # training first: it must see every label
        if counts[part] == 0 and counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[part] += 1
    return counts


def split_table(table: pd.DataFrame, label_col: str = "label",
                fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                seed: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split rows into train, validation and test, stratified by ``label_col`` (label by label, warning, if too few).

    >>> table = pd.DataFrame({"ImageId": [f"{i}.jpg" for i in range(20)], "label": [0, 1] * 10})
    >>> [len(part) for part in split_table(table, seed=0)]
    [14, 3, 3]
    """
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions {fractions}: expected three positive numbers that sum to 1")
    seed = current().seed if seed is None else seed
    from sklearn.model_selection import train_test_split

    _, val_part, test_part = fractions
    try:
        train, rest = train_test_split(table, train_size=fractions[0], stratify=table[label_col], random_state=seed)
        parts = (train, *train_test_split(rest, test_size=test_part / (val_part + test_part),
                                          stratify=rest[label_col], random_state=seed))
    except ValueError as exc:
        parts = _split_by_label(table, label_col, fractions, seed, reason=str(exc))
    return tuple(part.sort_index().reset_index(drop=True) for part in parts)  # type: ignore[return-value]


def _split_by_label(table: pd.DataFrame, label_col: str, fractions: tuple[float, float, float], seed: int,
                    reason: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
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


def _finish(ds: tf.data.Dataset, n: int, batch_size: int, shuffle: bool, seed: int | None,
            load: Callable[..., tuple]) -> tf.data.Dataset:
    import tensorflow as tf

    if shuffle:
        ds = ds.shuffle(n, seed=current().seed if seed is None else seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return without_autotuning(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def classifier_dataset(images_dir: str | Path, table: pd.DataFrame, image_size: tuple[int, int] = SEVERSTAL_SHAPE,
                       batch_size: int = 16, shuffle: bool = False, seed: int | None = None, label_col: str = "label",
                       source_size: tuple[int, int] | None = SEVERSTAL_SHAPE) -> tf.data.Dataset:
    """Batches of (image float32 0..255 RGB of ``image_size``, label float32) in ``table``'s order unless ``shuffle``.

    Parameters
    ----------
    source_size : the size every file must have (checked first), or ``None`` for any size.

    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()), n_images=4, height=64, width=400)
    >>> table = defect_table(root / "train_images", read_train_csv(root / "train.csv"))
    >>> next(iter(classifier_dataset(root / "train_images", table, (32, 200), source_size=(64, 400))))[0].shape
    TensorShape([4, 32, 200, 3])
    """
    import tensorflow as tf

    if table.empty:
        raise DataError("classifier_dataset: the table has no rows")
    paths = [str(Path(images_dir) / name) for name in table["ImageId"]]
    check_images(paths, source_size)
    size, source = tuple(image_size), None if source_size is None else tuple(source_size)
    ds = tf.data.Dataset.from_tensor_slices((paths, table[label_col].to_numpy(np.float32)))
    return _finish(ds, len(paths), batch_size, shuffle, seed, lambda p, y: (load_image_tensor(p, size, source), y))


def check_annotations(annotations: pd.DataFrame, shape: tuple[int, int] = SEVERSTAL_SHAPE,
                      what: str = "Annotation table", row: str = "row") -> pd.DataFrame:
    """Check an annotation table; return it with integer ``ClassId``, or raise one DataError naming every bad row.

    >>> notes = pd.DataFrame({"ImageId": ["a.jpg", "a.jpg"], "ClassId": ["3", "7"], "EncodedPixels": ["1 5", "1 5"]})
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
    problems = [f"{row} {i} ({image}): ClassId {cls!r} is not one of 1, 2, 3, 4"
                for i, image, cls in zip(annotations.index[~valid], annotations["ImageId"][~valid],
                                         annotations["ClassId"][~valid])]
    table = annotations.assign(ClassId=numbers.where(valid, 0).astype(np.int64))
    first_row = {}
    for i, image, cls, rle in zip(table.index, table["ImageId"], table["ClassId"], table["EncodedPixels"]):
        if cls == 0:
            continue
        if (image, cls) in first_row:
            problems.append(f"{row} {i} ({image}, class {cls}): duplicate of {row} {first_row[image, cls]}")
        first_row.setdefault((image, cls), i)
        try:
            parse_rle(rle, shape)
        except ValueError as exc:
            problems.append(f"{row} {i} ({image}, class {cls}): {exc}")
    raise_all(problems, what)
    return table


def segmentation_dataset(images_dir: str | Path, annotations: pd.DataFrame, image_ids: Sequence[str],
                         mask_size: tuple[int, int] = (128, 800), batch_size: int = 8, shuffle: bool = False,
                         seed: int | None = None, source_size: tuple[int, int] = SEVERSTAL_SHAPE) -> tf.data.Dataset:
    """Batches of (image float32 0..255 RGB, mask float32 0/1 with 4 channels), both of ``mask_size``.

    Parameters
    ----------
    source_size : the size of the image files (checked first); masks are shrunk with nearest neighbour.

    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()), n_images=2, height=64, width=400)
    >>> ds = segmentation_dataset(root / "train_images", read_train_csv(root / "train.csv"),
    ...                           list_images(root / "train_images"), (32, 200), source_size=(64, 400))
    >>> next(iter(ds))[1].shape
    TensorShape([2, 32, 200, 4])
    """
    import tensorflow as tf

    ids = list(image_ids)
    if not ids:
        raise DataError("segmentation_dataset: no image ids")
    paths = [str(Path(images_dir) / name) for name in ids]
    check_images(paths, source_size)
    annotations = check_annotations(annotations, tuple(source_size))
    rles = annotations.pivot(index="ImageId", columns="ClassId", values="EncodedPixels").reindex(
        index=ids, columns=list(CLASSES)).fillna("").to_numpy(str)
    height, width = mask_size

    def decode(row: np.ndarray) -> np.ndarray:
        masks = rles_to_masks([r.decode() for r in row], tuple(source_size))
        return cv2.resize(masks, (width, height), interpolation=cv2.INTER_NEAREST).astype(np.float32)

    def load(path: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        masks = tf.ensure_shape(tf.numpy_function(decode, [row], tf.float32), (height, width, len(CLASSES)))
        return load_image_tensor(path, (height, width), tuple(source_size)), masks

    ds = tf.data.Dataset.from_tensor_slices((paths, rles))
    return _finish(ds, len(paths), batch_size, shuffle, seed, load)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    p25, median, p75 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return float(median), float(p25), float(p75)


def mask_statistics(annotations: pd.DataFrame, image_ids: Sequence[str] | None = None,
                    shape: tuple[int, int] = SEVERSTAL_SHAPE) -> pd.DataFrame:
    """Counts, shares and quartiles (``value``, ``p25``, ``p75``) of defect masks, per (``statistic``, ``class``).

    Parameters
    ----------
    image_ids : every image, defect-free ones included (``None``: the defect-free share is NaN).

    >>> notes = pd.DataFrame({"ImageId": ["a.jpg", "b.jpg"], "ClassId": [1, 3], "EncodedPixels": ["1 1 3 1", "1 8"]})
    >>> stats = mask_statistics(notes, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], shape=(4, 8))
    >>> float(stats.loc[("components", "1"), "value"]), float(stats.loc[("defect-free images (share)", "all"), "value"])
    (2.0, 0.5)
    """
    from skimage.measure import label

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
        ("images", "all"): (n_images, np.nan, np.nan), ("defect-free images (share)", "all"): (free, np.nan, np.nan),
        ("defective images with 2+ classes (share)", "all"): (two, np.nan, np.nan)}
    for key in ["all", *map(str, CLASSES)]:
        part = per_mask if key == "all" else per_mask[per_mask["class"] == int(key)]
        rows_out[("masks", key)] = (len(part), np.nan, np.nan)
        rows_out[("masks (share)", key)] = (len(part) / len(per_mask) if len(per_mask) else np.nan, np.nan, np.nan)
        for name, column in [("area (pixels)", "area"), ("components", "components"),
                             ("x centre (share of width)", "x"), ("rows spanned (share of height)", "rows")]:
            rows_out[(name, key)] = _quartiles(part[column].to_numpy())
    index = pd.MultiIndex.from_tuples(list(rows_out), names=["statistic", "class"])
    return pd.DataFrame(list(rows_out.values()), index=index, columns=["value", "p25", "p75"])
