"""The NEU surface defect database: find it, index it, load it, and generate a synthetic stand-in.

Six classes of hot-rolled steel surface defects, 300 grayscale images of 200x200
each. The Kaggle copy (``kaustubhdikshit/neu-surface-defect-database``) is split
into 1,440 training and 360 validation images.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from defectlib.config import banner, settings
from defectlib.errors import DataError

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
"""One line per class, for lessons and plots."""

NATIVE_SIZE = (200, 200)
SYNTHETIC_MARKER = "SYNTHETIC.txt"  # written last by make_synthetic_neu: marks a complete, generated set
KAGGLE_HANDLE = "kaustubhdikshit/neu-surface-defect-database"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
SPLITS = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
          "val": "validation", "test": "test", "testing": "test"}

_ALIASES = {
    "crazing": "crazing", "cr": "crazing",
    "inclusion": "inclusion", "inclusions": "inclusion", "in": "inclusion",
    "patches": "patches", "patch": "patches", "pa": "patches",
    "pitted_surface": "pitted_surface", "pitted": "pitted_surface", "ps": "pitted_surface",
    "rolled_in_scale": "rolled-in_scale", "rolled": "rolled-in_scale", "rs": "rolled-in_scale",
    "scratches": "scratches", "scratch": "scratches", "sc": "scratches",
}


def canonical_class(name: str) -> str | None:
    """Map a folder or file-name prefix to one of :data:`CLASS_NAMES` (``None`` if unknown).

    Examples
    --------
    >>> canonical_class("Rolled-in Scale"), canonical_class("PS"), canonical_class("rust")
    ('rolled-in_scale', 'pitted_surface', None)
    """
    return _ALIASES.get(re.sub(r"[\s\-]+", "_", name.strip().lower()))


@dataclass(frozen=True)
class NEUData:
    """An indexed copy of the NEU database.

    ``files`` has one row per image: ``path``, ``class_name``, ``label`` (index in
    ``CLASS_NAMES``) and ``split`` (``train``, ``validation`` or ``test``).
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


# --------------------------------------------------------------------------- finding


def find_neu(path: str | Path | None = None, max_per_class: int | None = None) -> NEUData:
    """Find the NEU database, index it and say loudly which copy is used.

    Order: ``path``, else ``DEFECTLIB_NEU_DIR``, else a Kaggle download with
    kagglehub (skipped when ``DEFECTLIB_OFFLINE=1``), else the embedded synthetic
    data set. ``max_per_class`` keeps the first images of each class in each
    split (fast mode defaults to 40 train / 10 validation per class).

    Examples
    --------
    >>> data = find_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5))  # doctest: +ELLIPSIS
    ===...
    >>> data.files.groupby("split").size().to_dict()
    {'train': 24, 'validation': 6}
    """
    cfg = settings()
    folder = Path(path).expanduser() if path is not None else cfg.neu_dir
    if folder is not None:
        if not folder.is_dir():
            origin = "argument" if path is not None else "DEFECTLIB_NEU_DIR"
            raise DataError(f"NEU folder {folder} (from the {origin}) does not exist or is not a folder")
        source, why = "folder", f"the folder {folder}"
        if any(folder.glob(SYNTHETIC_MARKER)) or any(folder.glob(f"*/{SYNTHETIC_MARKER}")):
            source = "synthetic"
    else:
        folder, why = _download_neu(cfg.offline)
        source = "kaggle" if folder is not None else "synthetic"
        if folder is None:
            folder = make_synthetic_neu(
                cfg.data_home / "synthetic" / f"neu-{cfg.pick(300, 50)}-seed{cfg.seed}",
                per_class=cfg.pick(300, 50), seed=cfg.seed)
    files = index_neu(folder, seed=cfg.seed)
    if max_per_class is None and cfg.fast:
        max_per_class = 40
    if max_per_class is not None:
        files = _subsample(files, max_per_class)
    data = NEUData(root=folder, source=source, files=files)
    counts = files.groupby("split").size().to_dict()
    lines = [f"Using: {why}", f"Images: {counts}"]
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


def _subsample(files: pd.DataFrame, max_per_class: int) -> pd.DataFrame:
    """Keep at most ``max_per_class`` training images per class, a quarter of that for other splits."""
    limits = {"train": max_per_class}
    keep = files.groupby(["split", "class_name"], sort=False).cumcount() < files["split"].map(
        lambda s: limits.get(s, max(1, max_per_class // 4)))
    return files[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- indexing


def _image_files(folder: Path) -> list[Path]:
    """The image files in a folder, sorted; any other non-hidden file is an error."""
    out = []
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.is_dir():
            continue
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{f}: not an image file (expected one of {sorted(IMAGE_SUFFIXES)})")
        out.append(f)
    return out


def _class_of_file(f: Path) -> str:
    prefix = f.stem.rsplit("_", 1)[0] if "_" in f.stem else f.stem.rstrip("0123456789")
    name = canonical_class(prefix)
    if name is None:
        raise DataError(f"{f}: cannot tell the class from the file name (expected e.g. crazing_1.jpg or Cr_1.bmp)")
    return name


def _rows_from_class_dirs(folder: Path, split: str) -> list[dict]:
    rows = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = canonical_class(d.name)
        if name is None:
            raise DataError(f"{d}: folder name is not a NEU class (expected one of {', '.join(CLASS_NAMES)})")
        images = _image_files(d)
        if not images:
            raise DataError(f"{d}: class folder is empty")
        rows += [{"path": str(f), "class_name": name, "split": split} for f in images]
    return rows


def _has_images(folder: Path) -> bool:
    return any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir() if f.is_file())


def _find_layout(root: Path) -> tuple[str, Path]:
    candidates = [root, *sorted(p for p in root.glob("*") if p.is_dir()),
                  *sorted(p for p in root.glob("*/*") if p.is_dir())]
    for d in candidates:
        if any((d / split / "images").is_dir() for split in SPLITS):
            return "kaggle", d
        subdirs = {p.name.lower(): p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")}
        if "images" in subdirs and _has_images(subdirs["images"]):
            return "flat", subdirs["images"]
        if any(name in SPLITS for name in subdirs):
            return "split-tree", d
        if subdirs and all(canonical_class(name) for name in subdirs):
            return "class-tree", d
        if _has_images(d):
            return "flat", d
    raise DataError(f"no NEU images found under {root}: expected NEU-DET/<split>/images/<class>/, "
                    "IMAGES/ with files like crazing_1.jpg, NEU-CLS files like Cr_1.bmp, "
                    "or a <split>/<class>/ tree")


def index_neu(root: str | Path, seed: int = 42, validation_fraction: float = 0.2) -> pd.DataFrame:
    """Index a NEU folder in any supported layout into a table of image files.

    Layouts: Kaggle ``NEU-DET/{train,validation}/images/<class>/``; the original flat
    ``IMAGES/`` (class from the file name); NEU-CLS flat files (``Cr_1.bmp`` ...);
    any ``<split>/<class>/`` or ``<class>/`` tree. Without a validation split a
    stratified, deterministic one is made from the training images.

    Examples
    --------
    >>> files = index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5))
    >>> list(files.columns)
    ['path', 'class_name', 'label', 'split']
    """
    root = Path(root)
    layout, folder = _find_layout(root)
    rows: list[dict] = []
    if layout == "kaggle":
        for split_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            split = SPLITS.get(split_dir.name.lower())
            if split is None:
                raise DataError(f"{split_dir}: unknown split name (expected train, validation or test)")
            if not (split_dir / "images").is_dir():
                raise DataError(f"{split_dir}: split has no images/ folder")
            rows += _rows_from_class_dirs(split_dir / "images", split)
    elif layout == "split-tree":
        for split_dir in sorted(p for p in folder.iterdir() if p.is_dir() and SPLITS.get(p.name.lower())):
            rows += _rows_from_class_dirs(split_dir, SPLITS[split_dir.name.lower()])
    elif layout == "class-tree":
        rows = _rows_from_class_dirs(folder, "train")
    else:
        rows = [{"path": str(f), "class_name": _class_of_file(f), "split": "train"} for f in _image_files(folder)]
    files = pd.DataFrame(rows, columns=["path", "class_name", "split"])
    if files.empty or not (files["split"] == "train").any():
        raise DataError(f"{folder}: no training images found (a train split is required)")
    missing = set(CLASS_NAMES) - set(files.loc[files["split"] == "train", "class_name"])
    if missing:
        raise DataError(f"{folder}: no training images for class(es) {', '.join(sorted(missing))}")
    if not (files["split"] == "validation").any():
        files = _make_validation_split(files, seed, validation_fraction)
    files["label"] = files["class_name"].map(CLASS_NAMES.index)
    order = {"train": 0, "validation": 1, "test": 2}
    files = files.sort_values(["split", "label", "path"], key=lambda c: c.map(order) if c.name == "split" else c)
    return files[["path", "class_name", "label", "split"]].reset_index(drop=True)


def _make_validation_split(files: pd.DataFrame, seed: int, fraction: float) -> pd.DataFrame:
    from sklearn.model_selection import train_test_split

    train = files[files["split"] == "train"]
    _, val_index = train_test_split(train.index, test_size=fraction, stratify=train["class_name"], random_state=seed)
    files = files.copy()
    files.loc[val_index, "split"] = "validation"
    return files


def with_test_split(data: NEUData, validation_fraction: float = 0.2, seed: int | None = None) -> NEUData:
    """The course's evaluation protocol: a test split that no design choice touches.

    When ``data`` has no ``test`` split, its ``validation`` images become the test
    set and a stratified, deterministic ``validation`` split (``validation_fraction``
    of the training images) is carved from ``train``: choose epochs, architectures
    and thresholds on validation, and report final numbers once, on test. On the
    Kaggle copy of NEU that gives 1,152 / 288 / 360 images. A copy that already
    has a test split is returned unchanged.

    Examples
    --------
    >>> data = NEUData(Path("."), "synthetic", index_neu(make_synthetic_neu("/tmp/neu-doc10", per_class=10)))
    >>> class_counts(with_test_split(data)).sum().to_dict()
    {'train': 38, 'validation': 10, 'test': 12}
    """
    if (data.files["split"] == "test").any():
        return data
    seed = settings().seed if seed is None else seed
    files = data.files.copy()
    files.loc[files["split"] == "validation", "split"] = "test"
    files = _make_validation_split(files, seed, validation_fraction)
    order = {"train": 0, "validation": 1, "test": 2}
    files = files.sort_values(["split", "label", "path"], key=lambda c: c.map(order) if c.name == "split" else c)
    return NEUData(data.root, data.source, files.reset_index(drop=True), data.class_names)


def class_counts(data: NEUData) -> pd.DataFrame:
    """Images per class (rows, in label order) and split (columns).

    Examples
    --------
    >>> data = NEUData(Path("."), "folder", index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5)))
    >>> class_counts(data).loc["crazing"].to_dict()
    {'train': 4, 'validation': 1}
    """
    table = pd.crosstab(data.files["class_name"], data.files["split"])
    columns = [s for s in ("train", "validation", "test") if s in table.columns]
    return table.reindex(index=list(data.class_names), columns=columns, fill_value=0).rename_axis(
        index="class", columns=None)


# --------------------------------------------------------------------------- loading pixels


def read_image(path: str | Path, color: str = "grayscale", size: tuple[int, int] | None = None) -> np.ndarray:
    """Read one image as ``uint8`` (height, width, channels), checking it on the way.

    ``color`` is ``"grayscale"`` (1 channel) or ``"rgb"`` (3). Without ``size`` the
    image must be the native 200x200; with it the image is resized (area averaging).
    Raises :class:`DataError` naming the file if it is empty, not an image, of an
    unsupported colour mode, or of an unexpected size.

    Examples
    --------
    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> read_image(next(root.rglob("*.jpg")), "rgb", size=(64, 64)).shape
    (64, 64, 3)
    """
    path = Path(path)
    if color not in ("grayscale", "rgb"):
        raise ValueError(f"color must be 'grayscale' or 'rgb', not {color!r}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt, or not an image format OpenCV knows)")
    if image.dtype != np.uint8:
        raise DataError(f"{path}: {image.dtype} pixels, expected 8-bit images")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3):
        raise DataError(f"{path}: {channels} colour channels, expected grayscale (1) or colour (3)")
    if size is None and image.shape[:2] != NATIVE_SIZE:
        raise DataError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, expected the NEU size "
                        f"{NATIVE_SIZE[1]}x{NATIVE_SIZE[0]} (pass image_size to resize)")
    if color == "grayscale" and channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if channels == 1 else cv2.COLOR_BGR2RGB)
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return image.reshape(*image.shape[:2], -1)


def load_images(paths: list[str] | pd.Series, color: str = "grayscale",
                size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode many images once, in parallel, into one ``uint8`` array (N, H, W, C).

    Examples
    --------
    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> load_images(sorted(map(str, root.rglob("*.jpg")))[:3]).shape
    (3, 200, 200, 1)
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda p: read_image(p, color, size), list(paths)))
    if not images:
        raise DataError("no images to load")
    return np.stack(images)


def neu_arrays(data: NEUData, split: str, color: str = "grayscale",
               image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (``uint8``) and integer labels of one split, in the table's stable order."""
    table = data.split(split)
    if table.empty:
        raise DataError(f"{data.root}: the {split!r} split has no images")
    return load_images(table["path"], color, image_size), table["label"].to_numpy(np.int32)


def neu_datasets(data: NEUData, image_size: tuple[int, int] | None = None, color: str = "grayscale",
                 batch_size: int = 32, seed: int | None = None, splits: tuple[str, ...] = ("train", "validation")):
    """One ``tf.data`` pipeline per split: ``(images float32 0-255, integer labels)``.

    ``splits`` names the pipelines returned, in order: training and validation by
    default; ``("train", "validation", "test")`` after :func:`with_test_split`.

    Images are decoded once into memory (the cache), kept at the native 200x200
    unless ``image_size`` asks otherwise, and prefetched. Only the training
    pipeline is shuffled (again every epoch); the others always yield the images in
    the order of ``data.split(name)``, so labels gathered from them line up with
    predictions.

    Examples
    --------
    >>> data = NEUData(Path("."), "synthetic", index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5)))
    >>> train, val = neu_datasets(data, batch_size=4)
    >>> x, y = next(iter(val))
    >>> tuple(x.shape), x.dtype.name, y.numpy().tolist()
    ((4, 200, 200, 1), 'float32', [0, 1, 2, 3])
    """
    import tensorflow as tf

    seed = settings().seed if seed is None else seed

    def pipeline(split: str, shuffle: bool):
        x, y = neu_arrays(data, split, color, image_size)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    return tuple(pipeline(split, split == "train") for split in splits)


# --------------------------------------------------------------------------- boxes


def read_boxes(root: str | Path) -> pd.DataFrame:
    """All VOC XML bounding boxes under ``root`` as one table, one row per box.

    Columns: ``file``, ``class_name``, ``xmin``, ``ymin``, ``xmax``, ``ymax``,
    ``width``, ``height``. A malformed XML file raises :class:`DataError` naming it.

    Examples
    --------
    >>> boxes = read_boxes(make_synthetic_neu("/tmp/neu-doc", per_class=5))
    >>> sorted(boxes["class_name"].unique())[:2]
    ['crazing', 'inclusion']
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
    columns = ["file", "class_name", "xmin", "ymin", "xmax", "ymax", "width", "height"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- synthetic stand-in


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    low = cv2.resize(rng.normal(0, 1, (6, 6)), (size, size), interpolation=cv2.INTER_CUBIC)
    image = 128 + 12 * low + rng.normal(0, 6, (size, size))
    return image


def _draw_defect(name: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """One synthetic image of class ``name`` and its defect boxes (xmin, ymin, xmax, ymax)."""
    image = _background(rng, size)
    layer = np.zeros((size, size), np.float32)
    boxes = []
    if name == "crazing":  # fine network of short dark cracks over the whole surface
        for _ in range(rng.integers(60, 90)):
            p = rng.integers(0, size, 2)
            for _ in range(rng.integers(2, 5)):
                q = np.clip(p + rng.integers(-14, 15, 2), 0, size - 1)
                cv2.line(layer, tuple(map(int, p)), tuple(map(int, q)), -35.0, 1)
                p = q
        boxes.append((2, 2, size - 3, size - 3))
    elif name == "inclusion":  # a few dark elongated spots
        for _ in range(rng.integers(2, 5)):
            c = rng.integers(20, size - 20, 2)
            axes = (int(rng.integers(3, 7)), int(rng.integers(12, 30)))
            cv2.ellipse(layer, tuple(map(int, c)), axes, float(rng.uniform(-20, 20)), 0, 360, -70.0, -1)
            boxes.append((int(c[0] - axes[0]), int(c[1] - axes[1]), int(c[0] + axes[0]), int(c[1] + axes[1])))
    elif name == "patches":  # large soft blotches, darker or brighter
        sign = rng.choice([-1.0, 1.0])
        for _ in range(rng.integers(1, 4)):
            c = rng.integers(30, size - 30, 2)
            r = int(rng.integers(20, 45))
            cv2.circle(layer, tuple(map(int, c)), r, 60.0 * sign, -1)
            boxes.append((int(c[0] - r), int(c[1] - r), int(c[0] + r), int(c[1] + r)))
        layer = cv2.GaussianBlur(layer, (0, 0), 9)
    elif name == "pitted_surface":  # many small round dark pits
        for _ in range(rng.integers(40, 80)):
            c = rng.integers(4, size - 4, 2)
            cv2.circle(layer, tuple(map(int, c)), int(rng.integers(1, 4)), -55.0, -1)
        boxes.append((4, 4, size - 5, size - 5))
    elif name == "rolled-in_scale":  # horizontally stretched bright flakes with dark rims
        for _ in range(rng.integers(15, 30)):
            c = rng.integers(8, size - 8, 2)
            axes = (int(rng.integers(6, 14)), int(rng.integers(2, 5)))
            cv2.ellipse(layer, tuple(map(int, c)), axes, 0, 0, 360, -45.0, 2)
            cv2.ellipse(layer, tuple(map(int, c)), (max(1, axes[0] - 2), max(1, axes[1] - 1)), 0, 0, 360, 40.0, -1)
        boxes.append((8, 8, size - 9, size - 9))
    elif name == "scratches":  # one to three long straight thin lines
        for _ in range(rng.integers(1, 4)):
            x0, x1 = (int(v) for v in rng.integers(0, size, 2))
            cv2.line(layer, (x0, 0), (x1, size - 1), float(rng.choice([-1, 1]) * 70), int(rng.integers(1, 3)))
            boxes.append((min(x0, x1), 0, max(x0, x1), size - 1))
    else:
        raise ValueError(f"unknown class {name!r}")
    image = np.clip(image + layer, 0, 255).astype(np.uint8)
    return image, [tuple(int(np.clip(v, 0, size - 1)) for v in b) for b in boxes]


def _voc_xml(filename: str, name: str, size: int, boxes: list[tuple[int, int, int, int]]) -> str:
    objects = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for b in boxes)
    return (f"<annotation><folder>synthetic</folder><filename>{filename}</filename>"
            f"<source><database>NEU-DET (synthetic)</database></source>"
            f"<size><width>{size}</width><height>{size}</height><depth>1</depth></size>"
            f"<segmented>0</segmented>{objects}</annotation>\n")


def make_synthetic_neu(root: str | Path, per_class: int = 300, seed: int = 0, size: int = 200,
                       validation_fraction: float = 0.2) -> Path:
    """Write a deterministic NEU stand-in in the Kaggle layout and return its ``NEU-DET`` folder.

    Six visibly different textures (crack networks, dark spots, blotches, pits,
    scale flakes, straight scratches) as grayscale JPEGs with VOC XML boxes, split
    like the Kaggle copy. A finished set (marker file present) is reused.

    Examples
    --------
    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> sorted(p.name for p in (root / "train" / "images").iterdir())[:3]
    ['crazing', 'inclusion', 'patches']
    """
    out = Path(root) / "NEU-DET"
    marker = out / SYNTHETIC_MARKER
    if marker.exists():
        return out
    n_val = max(1, round(per_class * validation_fraction))
    for k, name in enumerate(CLASS_NAMES):
        for i in range(1, per_class + 1):
            rng = np.random.default_rng([seed, k, i])
            image, boxes = _draw_defect(name, rng, size)
            split = "validation" if i > per_class - n_val else "train"
            filename = f"{name}_{i}.jpg"
            image_dir, xml_dir = out / split / "images" / name, out / split / "annotations"
            image_dir.mkdir(parents=True, exist_ok=True)
            xml_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(image_dir / filename), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            (xml_dir / f"{name}_{i}.xml").write_text(_voc_xml(filename, name, size, boxes))
    marker.write_text(f"Synthetic NEU stand-in made by defectlib: per_class={per_class} seed={seed} "
                      f"size={size}. Not real data.\n")
    return out
