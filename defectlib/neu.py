"""The NEU surface defect database (six classes of steel defects, 200x200 grayscale): find, index and load it.

The Kaggle copy (``kaustubhdikshit/neu-surface-defect-database``) has 1,440 training and 360 validation images.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from defectlib.config import banner, current
from defectlib.errors import DataError, raise_all
from defectlib.images import load_images, without_autotuning
from defectlib.synthetic import SYNTHETIC_MARKER, make_synthetic_neu


CLASS_NAMES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
"""The six classes, in the stable order used for label numbers."""

CLASS_DESCRIPTIONS = {
    "crazing": "a fine network of shallow cracks across the surface",
    "inclusion": "non-metallic particles rolled into the steel: dark spots and streaks",
    "patches": "large irregular regions of different brightness",
    "pitted_surface": "many small pits or craters left by corrosion or rolling",
    "rolled-in_scale": "oxide scale pressed into the surface during rolling: flaky marks",
    "scratches": "long straight marks left by sliding contact",
}

KAGGLE_HANDLE = "kaustubhdikshit/neu-surface-defect-database"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
# Skipped: hidden names, side files and folders of operating systems and Jupyter, LabelImg .xml beside images.
SIDE_FILES = {".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini"}
SIDE_FOLDERS = {"__macosx", ".ipynb_checkpoints", "@eadir", "$recycle.bin"}
SIDE_SUFFIXES = {".xml"}
SPLITS = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
          "val": "validation", "test": "test", "testing": "test"}

_ALIASES = {alias: name for name, short in zip(CLASS_NAMES, ["cr", "inclusions in", "patch pa", "pitted ps",
                                                             "rolled rs", "scratch sc"])
            for alias in (name.replace("-", "_"), *short.split())}


def canonical_class(name: str) -> str | None:
    """Map a folder or file-name prefix to one of :data:`CLASS_NAMES` (``None`` if unknown).

    >>> canonical_class("Rolled-in Scale"), canonical_class("PS"), canonical_class("rust")
    ('rolled-in_scale', 'pitted_surface', None)
    """
    return _ALIASES.get(re.sub(r"[\s\-]+", "_", name.strip().lower()))


@dataclass(frozen=True)
class NEUData:
    """An indexed copy of NEU: ``files`` has ``path``, ``class_name``, ``label``, ``split``; ``source`` says whence.

    >>> NEUData(Path("."), "synthetic", pd.DataFrame(columns=["path", "class_name", "label", "split"])).synthetic
    True
    """

    root: Path
    source: str  # "folder", "kaggle" or "synthetic"
    files: pd.DataFrame
    class_names: tuple[str, ...] = CLASS_NAMES

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split, in a stable order."""
        return self.files[self.files["split"] == name].reset_index(drop=True)


def find_neu(path: str | Path | None = None, max_per_class: int | None = None) -> NEUData:
    """Find the NEU database, index it and print a banner saying which copy is used.

    Parameters
    ----------
    path : else ``DEFECTLIB_NEU_DIR``, else a kagglehub download (unless offline), else the synthetic stand-in.
    max_per_class : keep the first training images of each class, a quarter as many in other splits (fast mode: 40).

    >>> data = find_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5))  # doctest: +ELLIPSIS
    ===...
    >>> data.files.groupby("split").size().to_dict()
    {'train': 24, 'validation': 6}
    """
    cfg = current()
    folder = Path(path).expanduser() if path is not None else cfg.neu_dir
    if folder is not None:
        if not folder.is_dir():
            origin = "argument" if path is not None else "DEFECTLIB_NEU_DIR"
            raise DataError(f"NEU folder {folder} (from the {origin}) does not exist or is not a folder")
        synthetic = any(folder.glob(SYNTHETIC_MARKER)) or any(folder.glob(f"*/{SYNTHETIC_MARKER}"))
        source, why = "synthetic" if synthetic else "folder", f"the folder {folder}"
    else:
        folder, why = _download_neu(cfg.offline)
        source = "kaggle" if folder is not None else "synthetic"
        if folder is None:
            n, seed = cfg.pick(300, 50), cfg.seed
            folder = make_synthetic_neu(cfg.data_home / "synthetic" / f"neu-{n}-seed{seed}", per_class=n, seed=seed)
    files = index_neu(folder, seed=cfg.seed)
    if max_per_class is None and cfg.fast:
        max_per_class = 40
    if max_per_class is not None:
        limit = files["split"].map(lambda s: max_per_class if s == "train" else max(1, max_per_class // 4))
        files = files[files.groupby(["split", "class_name"], sort=False).cumcount() < limit].reset_index(drop=True)
    data = NEUData(root=folder, source=source, files=files)
    lines = [f"Using: {why}", f"Images: {files.groupby('split').size().to_dict()}"]
    if data.synthetic:
        title = "NEU data: SYNTHETIC stand-in (the embedded offline default)"
        lines += ["These are generated textures in the NEU layout, NOT real steel images.",
                  "Accuracies measured on them are NOT results on the NEU database.",
                  "For the real data: set DEFECTLIB_NEU_DIR, or run where kagglehub can download."]
    else:
        title = "NEU data: the real NEU surface defect database"
    if cfg.fast:
        lines.append("FAST MODE: a small subset and few epochs; numbers are not meaningful.")
    banner(title, *lines)
    return data


def _download_neu(offline: bool) -> tuple[Path | None, str]:
    if offline:
        return None, "DEFECTLIB_OFFLINE=1, so no download was tried and the synthetic stand-in is used"
    try:
        import kagglehub

        return Path(kagglehub.dataset_download(KAGGLE_HANDLE)), f"Kaggle data set {KAGGLE_HANDLE} (kagglehub)"
    except Exception as error:  # noqa: BLE001 - any failure means: fall back, and say why
        return None, (f"the Kaggle download of {KAGGLE_HANDLE} failed ({type(error).__name__}: "
                      f"{str(error)[:160]}). To use the real data, run with internet access, or "
                      "download it yourself and set DEFECTLIB_NEU_DIR to the folder")


def _is_side(entry: Path) -> bool:
    name = entry.name.lower()
    return name.startswith(".") or name in SIDE_FILES or (name in SIDE_FOLDERS and entry.is_dir())


def _is_image(entry: Path) -> bool:
    return entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file()


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not _is_side(p))


def _count_images(folder: Path) -> int:
    return sum(_count_images(entry) if entry.is_dir() else _is_image(entry) for entry in _entries(folder))


def _unused_folder(folder: Path, why: str, problems: list[str]) -> None:
    """Report ``folder`` if images lie anywhere under it (they would not be used)."""
    if n := _count_images(folder):
        problems.append(f"{folder}/: {n} image(s) not used: {why}")


def _image_files(folder: Path, problems: list[str]) -> list[Path]:
    """The image files in a folder, sorted; other files and sub-folders with images are reported."""
    out = []
    for f in _entries(folder):
        if f.is_dir():
            _unused_folder(f, f"a sub-folder inside the image folder {folder.name}/ (move its images up "
                              f"into {folder.name}/, or move it out)", problems)
        elif f.suffix.lower() in IMAGE_SUFFIXES:
            out.append(f)
        elif f.suffix.lower() not in SIDE_SUFFIXES:
            problems.append(f"{f}: not an image file (expected one of {sorted(IMAGE_SUFFIXES)}; move it out)")
    return out


def _rows_from_class_dirs(folder: Path, split: str, problems: list[str]) -> list[dict]:
    rows = []
    for d in _entries(folder):
        if not d.is_dir():
            if d.suffix.lower() in IMAGE_SUFFIXES:
                problems.append(f"{d}: image not used: it lies in {folder.name}/ outside any class folder "
                                "(move it into the folder of its class)")
            continue
        name = canonical_class(d.name)
        if name is None:
            _unused_folder(d, f"the folder name is not a NEU class (expected one of {', '.join(CLASS_NAMES)}; "
                              "rename it or move it out)", problems)
            continue
        images = _image_files(d, problems)
        if not images:
            problems.append(f"{d}: class folder has no images")
        rows += [{"path": str(f), "class_name": name, "split": split} for f in images]
    return rows


def _loose_images(folder: Path, problems: list[str], where: str) -> None:
    for f in _entries(folder):
        if _is_image(f):
            problems.append(f"{f}: image not used: it lies {where} (move it into the folder of its class)")


def _has_images(folder: Path) -> bool:
    return any(_is_image(f) for f in _entries(folder))


def _find_layout(root: Path) -> tuple[str, Path]:
    if not root.is_dir():
        raise DataError(f"NEU folder {root} does not exist or is not a folder")
    level1 = [p for p in _entries(root) if p.is_dir()]
    level2 = [p for d in level1 for p in _entries(d) if p.is_dir()]
    for d in [root, *level1, *level2]:
        if any((d / split / "images").is_dir() for split in SPLITS):
            return "kaggle", d
        subdirs = {p.name.lower(): p for p in _entries(d) if p.is_dir()}
        if "images" in subdirs and _has_images(subdirs["images"]):
            return "flat", subdirs["images"]
        if any(name in SPLITS for name in subdirs):
            return "split-tree", d
        if any(canonical_class(name) for name in subdirs):
            return "class-tree", d
        if _has_images(d):
            return "flat", d
    raise DataError(f"no NEU images found under {root}: expected NEU-DET/<split>/images/<class>/, "
                    "IMAGES/ with files like crazing_1.jpg, NEU-CLS files like Cr_1.bmp, "
                    "or a <split>/<class>/ tree")


def index_neu(root: str | Path, seed: int = 42, validation_fraction: float = 0.2) -> pd.DataFrame:
    """Index a NEU folder in any known layout (Kaggle, flat, NEU-CLS, class trees); every image indexed or reported.

    >>> files = index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5))
    >>> list(files.columns)
    ['path', 'class_name', 'label', 'split']
    """
    layout, folder = _find_layout(Path(root))
    rows: list[dict] = []
    problems: list[str] = []
    if layout == "kaggle":
        for split_dir, split in _split_dirs(folder, problems):
            if not (split_dir / "images").is_dir():
                _unused_folder(split_dir, "the split folder has no images/ folder (put the class folders "
                                          "in images/)", problems)
                continue
            _loose_images(split_dir, problems, f"in {split_dir.name}/ outside images/")
            for d in _entries(split_dir):
                if d.is_dir() and d.name not in ("images", "annotations"):
                    _unused_folder(d, f"only images/ is read in {split_dir.name}/ (move its class folders "
                                      "into images/)", problems)
            rows += _rows_from_class_dirs(split_dir / "images", split, problems)
    elif layout == "split-tree":
        for split_dir, split in _split_dirs(folder, problems):
            rows += _rows_from_class_dirs(split_dir, split, problems)
    elif layout == "class-tree":
        rows = _rows_from_class_dirs(folder, "train", problems)
    else:
        for f in _image_files(folder, problems):
            name = canonical_class(f.stem.rsplit("_", 1)[0] if "_" in f.stem else f.stem.rstrip("0123456789"))
            if name is None:
                problems.append(f"{f}: cannot tell the class from the file name (expected e.g. crazing_1.jpg or "
                                "Cr_1.bmp)")
            else:
                rows.append({"path": str(f), "class_name": name, "split": "train"})
    raise_all(problems, f"NEU folder {folder}")
    files = pd.DataFrame(rows, columns=["path", "class_name", "split"])
    if files.empty or not (files["split"] == "train").any():
        raise DataError(f"{folder}: no training images found (a train split is required)")
    missing = set(CLASS_NAMES) - set(files.loc[files["split"] == "train", "class_name"])
    if missing:
        raise DataError(f"{folder}: no training images for class(es) {', '.join(sorted(missing))}")
    if not (files["split"] == "validation").any():
        try:
            files = _make_validation_split(files, seed, validation_fraction)
        except DataError as error:
            raise DataError(f"{folder} has no validation split, and index_neu {error}. Add a validation/ "
                            "split folder, or more training images") from None
    files["label"] = files["class_name"].map(CLASS_NAMES.index)
    return _in_order(files)[["path", "class_name", "label", "split"]]


def _in_order(files: pd.DataFrame) -> pd.DataFrame:
    """Sorted by split (train, validation, test), label and path."""
    order = {"train": 0, "validation": 1, "test": 2}
    files = files.sort_values(["split", "label", "path"], key=lambda c: c.map(order) if c.name == "split" else c)
    return files.reset_index(drop=True)


def _split_dirs(folder: Path, problems: list[str]):
    """Yield ``(folder, split)`` for each split folder; loose images and other folders go to ``problems``."""
    _loose_images(folder, problems, f"in {folder.name}/ beside the split folders")
    for split_dir in (p for p in _entries(folder) if p.is_dir()):
        split = SPLITS.get(split_dir.name.lower())
        if split is None:
            _unused_folder(split_dir, "the folder name is not a split (expected train, validation or test; "
                                      "rename it or move it out)", problems)
        else:
            yield split_dir, split


def _make_validation_split(files: pd.DataFrame, seed: int, fraction: float) -> pd.DataFrame:
    """Move a stratified ``fraction`` of the training rows to ``validation``."""
    from sklearn.model_selection import train_test_split

    train = files[files["split"] == "train"]
    counts = train["class_name"].value_counts()
    k = len(counts)
    if counts.min() < 2 or not k <= math.ceil(fraction * len(train)) <= len(train) - k:  # as scikit-learn rounds
        need = next((n for n in range(2 * k, 10**6) if k <= math.ceil(fraction * n) <= n - k), None)
        raise DataError(f"cannot carve a stratified {fraction:.0%} validation split from {len(train)} training "
                        f"image(s) (per class: {counts.sort_index().to_dict()}): every class needs at least 2 "
                        f"images, and the set at least {need} in all")
    _, val_index = train_test_split(train.index, test_size=fraction, stratify=train["class_name"], random_state=seed)
    files = files.copy()
    files.loc[val_index, "split"] = "validation"
    return files


def with_test_split(data: NEUData, validation_fraction: float = 0.2, seed: int | None = None) -> NEUData:
    """Without a test split: validation becomes test, and a stratified validation split is carved from train.

    >>> data = NEUData(Path("."), "synthetic", index_neu(make_synthetic_neu("/tmp/neu-doc10", per_class=10)))
    >>> class_counts(with_test_split(data)).sum().to_dict()
    {'train': 38, 'validation': 10, 'test': 12}
    """
    if (data.files["split"] == "test").any():
        return data
    seed = current().seed if seed is None else seed
    files = data.files.copy()
    files.loc[files["split"] == "validation", "split"] = "test"
    files = _make_validation_split(files, seed, validation_fraction)
    return NEUData(data.root, data.source, _in_order(files), data.class_names)


def class_counts(data: NEUData) -> pd.DataFrame:
    """Images per class (rows, in label order) and split (columns).

    >>> data = NEUData(Path("."), "folder", index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5)))
    >>> class_counts(data).loc["crazing"].to_dict()
    {'train': 4, 'validation': 1}
    """
    table = pd.crosstab(data.files["class_name"], data.files["split"])
    columns = [s for s in ("train", "validation", "test") if s in table.columns]
    return table.reindex(index=list(data.class_names), columns=columns, fill_value=0).rename_axis(
        index="class", columns=None)


def neu_arrays(data: NEUData, split: str, color: str = "grayscale",
               image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (``uint8``) and integer labels of one split, in the table's stable order.

    >>> data = NEUData(Path("."), "folder", index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5)))
    >>> x, y = neu_arrays(data, "validation")
    >>> x.shape, y.tolist()
    ((6, 200, 200, 1), [0, 1, 2, 3, 4, 5])
    """
    table = data.split(split)
    if table.empty:
        raise DataError(f"{data.root}: the {split!r} split has no images")
    return load_images(table["path"], color, image_size), table["label"].to_numpy(np.int32)


def neu_datasets(data: NEUData, image_size: tuple[int, int] | None = None, color: str = "grayscale",
                 batch_size: int = 32, seed: int | None = None, splits: tuple[str, ...] = ("train", "validation")):
    """One cached ``tf.data`` pipeline per name in ``splits`` of (float32 images 0-255, labels); only train shuffles.

    >>> data = NEUData(Path("."), "synthetic", index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5)))
    >>> x, y = next(iter(neu_datasets(data, batch_size=4)[1]))
    >>> tuple(x.shape), x.dtype.name, y.numpy().tolist()
    ((4, 200, 200, 1), 'float32', [0, 1, 2, 3])
    """
    import tensorflow as tf

    seed = current().seed if seed is None else seed

    def pipeline(split: str, shuffle: bool):
        x, y = neu_arrays(data, split, color, image_size)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)
        return without_autotuning(ds.prefetch(tf.data.AUTOTUNE))

    return tuple(pipeline(split, split == "train") for split in splits)


def read_boxes(root: str | Path) -> pd.DataFrame:
    """All VOC XML bounding boxes under ``root``, one row per box (a malformed file raises :class:`DataError`).

    >>> list(read_boxes(make_synthetic_neu("/tmp/neu-doc", per_class=5)).columns)
    ['file', 'class_name', 'xmin', 'ymin', 'xmax', 'ymax', 'width', 'height']
    """
    rows = []
    for xml_file in sorted(Path(root).rglob("*.xml")):
        try:
            tree = ET.parse(xml_file).getroot()
            filename = tree.findtext("filename", "")
            width, height = int(tree.findtext("size/width")), int(tree.findtext("size/height"))
            for obj in tree.iter("object"):
                box = obj.find("bndbox")
                name = canonical_class(obj.findtext("name", ""))
                if name is None:
                    raise ValueError(f"unknown class {obj.findtext('name')!r}")
                rows.append({"file": filename, "class_name": name, "width": width, "height": height,
                             **{k: int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")}})
        except (ET.ParseError, TypeError, ValueError, AttributeError) as error:
            raise DataError(f"{xml_file}: not a valid VOC annotation ({error})") from None
    return pd.DataFrame(rows, columns=["file", "class_name", "xmin", "ymin", "xmax", "ymax", "width", "height"])
