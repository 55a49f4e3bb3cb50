"""The NEU surface defect database: find it, index it, load it, and generate a synthetic stand-in.

Six classes of hot-rolled steel surface defects, 300 grayscale images of 200x200
each. The Kaggle copy (``kaustubhdikshit/neu-surface-defect-database``) is split
into 1,440 training and 360 validation images.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd

from defectlib.config import banner, current, write_complete
from defectlib.errors import DataError, raise_all

if TYPE_CHECKING:
    import tensorflow as tf

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
SIDE_FILES = {".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini"}
"""Files that operating systems leave in folders: skipped."""
SIDE_FOLDERS = {"__macosx", ".ipynb_checkpoints", "@eadir", "$recycle.bin"}
"""Folders that operating systems and Jupyter leave behind: skipped (as is any hidden name)."""
SIDE_SUFFIXES = {".xml"}
"""Annotation files that tools such as LabelImg save beside the images: skipped in image folders."""
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
    cfg = current()
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


def _is_side(entry: Path) -> bool:
    """A hidden name, or a known side file or folder of an operating system, Jupyter or an annotation tool."""
    name = entry.name.lower()
    if name.startswith(".") or name in SIDE_FILES:
        return True
    return name in SIDE_FOLDERS and entry.is_dir()


def _is_image(entry: Path) -> bool:
    return entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file()


def _entries(folder: Path) -> list[Path]:
    """The entries of a folder, sorted, without side files and folders."""
    return sorted(p for p in folder.iterdir() if not _is_side(p))


def _count_images(folder: Path) -> int:
    """How many image files lie anywhere under ``folder`` (side folders left out)."""
    count = 0
    for entry in _entries(folder):
        count += _count_images(entry) if entry.is_dir() else _is_image(entry)
    return count


def _unused_folder(folder: Path, why: str, problems: list[str]) -> None:
    """Report ``folder`` when it holds images that would not be used; a folder without images is harmless."""
    n = _count_images(folder)
    if n:
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


def _class_of_file(f: Path, problems: list[str]) -> str | None:
    prefix = f.stem.rsplit("_", 1)[0] if "_" in f.stem else f.stem.rstrip("0123456789")
    name = canonical_class(prefix)
    if name is None:
        problems.append(f"{f}: cannot tell the class from the file name (expected e.g. crazing_1.jpg or Cr_1.bmp)")
    return name


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
    """Index a NEU folder in any supported layout into a table of image files.

    Layouts: Kaggle ``NEU-DET/{train,validation}/images/<class>/``; the original flat
    ``IMAGES/`` (class from the file name); NEU-CLS flat files (``Cr_1.bmp`` ...);
    any ``<split>/<class>/`` or ``<class>/`` tree. Without a validation split a
    stratified, deterministic one is made from the training images.

    One rule for every layout: each image file is either indexed or reported.
    Images in a folder that is not a split or class name, in a sub-folder of a
    class or image folder, or loose beside the split or class folders raise one
    :class:`DataError` listing them all, with every other problem found (unknown
    files, empty class folders, file names without a class). Side files of
    operating systems and tools (``.DS_Store``, ``Thumbs.db``, ``desktop.ini``,
    ``__MACOSX/``, ``.ipynb_checkpoints/``, hidden files, LabelImg ``.xml`` beside
    the images) are skipped.

    Examples
    --------
    >>> files = index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5))
    >>> list(files.columns)
    ['path', 'class_name', 'label', 'split']
    """
    root = Path(root)
    layout, folder = _find_layout(root)
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
            name = _class_of_file(f, problems)
            if name is not None:
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
    """The rows sorted by split (train, validation, test), then label, then path, renumbered."""
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
    """Move a stratified ``fraction`` of the training rows to ``validation`` (DataError if too few)."""
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
    seed = current().seed if seed is None else seed
    files = data.files.copy()
    files.loc[files["split"] == "validation", "split"] = "test"
    files = _make_validation_split(files, seed, validation_fraction)
    return NEUData(data.root, data.source, _in_order(files), data.class_names)


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


_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""A marker after entropy-coded data: 0xFF not followed by a stuffed zero, a restart marker or a fill byte."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {0: "grey", 2: "colour (RGB)", 3: "palette colour", 4: "grey with alpha (2 channels)",
                     6: "colour with alpha (RGBA, 4 channels)"}


def _jpeg_is_complete(data: bytes) -> bool:
    """Whether the JPEG's marker structure reaches its end-of-image marker (bytes after it are allowed)."""
    pos, n = 2, len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:  # stray bytes between segments: skip to the next marker, as decoders do
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return False
            continue
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill byte, or markers without a length
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # start of scan: the entropy-coded data runs to the next marker
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                return False
            pos = found.start()
    return False


def decode_image_file(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode one image file with OpenCV, or raise :class:`DataError` naming the file and the problem.

    Rejects a missing, empty or undecodable file and a truncated JPEG: one whose
    data stops before its end-of-image marker, or one cut short but still closed
    by an end-of-image marker, which decoders fill with flat grey (128) from the
    cut to the end, so its last 8x8 block is exactly 128. Accepts what decoders
    accept: bytes after the end marker, a PNG saved under ``.jpg`` (the content
    decides, not the name). ``flags`` are OpenCV's ``imread`` flags.

    Examples
    --------
    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> good = next(root.rglob("*.jpg"))
    >>> decode_image_file(good).shape
    (200, 200)
    >>> cut = Path("/tmp/neu-doc/cut.jpg")
    >>> _ = cut.write_bytes(good.read_bytes()[:2000] + b"\\xff\\xd9")
    >>> decode_image_file(cut)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: /tmp/neu-doc/cut.jpg: truncated JPEG: ...
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not data:
        raise DataError(f"{path}: empty file (0 bytes)")
    jpeg = data[:2] == b"\xff\xd8"
    if jpeg and not _jpeg_is_complete(data):
        raise DataError(f"{path}: truncated JPEG (the data stops before its end-of-image marker); "
                        "replace it with a complete copy")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt, or not an image format OpenCV knows)")
    if jpeg and image.dtype == np.uint8:
        height, width = image.shape[:2]
        if (image[(height - 1) // 8 * 8:, (width - 1) // 8 * 8:] == 128).all():
            raise DataError(f"{path}: truncated JPEG: its last 8x8 block is the flat grey (128) a decoder fills "
                            "in where the image data stops early; replace it with a complete copy (if the "
                            "image really ends in flat grey 128, save it as PNG)")
    return image


def _decode_all(paths: list, decode) -> list:
    """``decode`` every path in a thread pool; one DataError naming every bad file."""
    def attempt(path):
        try:
            return decode(path), None
        except DataError as error:
            return None, str(error)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, paths))
    raise_all([problem for _, problem in results if problem], "Image files")
    return [image for image, _ in results]


def read_image(path: str | Path, color: str = "grayscale", size: tuple[int, int] | None = None) -> np.ndarray:
    """Read one image as ``uint8`` (height, width, channels), checking it on the way.

    ``color`` is ``"grayscale"`` (1 channel) or ``"rgb"`` (3). Without ``size`` the
    image must be the native 200x200; with it the image is resized (area averaging).
    Raises :class:`DataError` naming the file if it is missing, empty, truncated
    (see :func:`decode_image_file`), not an image, of an unsupported colour mode,
    or of an unexpected size.

    Examples
    --------
    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> read_image(next(root.rglob("*.jpg")), "rgb", size=(64, 64)).shape
    (64, 64, 3)
    """
    path = Path(path)
    if color not in ("grayscale", "rgb"):
        raise ValueError(f"color must be 'grayscale' or 'rgb', not {color!r}")
    image = decode_image_file(path)
    if image.dtype != np.uint8:
        raise DataError(f"{path}: {image.dtype} pixels, expected 8-bit images")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3):
        with path.open("rb") as f:
            header = f.read(26)  # OpenCV reads grey + alpha as 4 channels: the PNG header says what the file has
        mode = (_PNG_COLOUR_TYPES.get(header[25], f"{channels} channels") if header[:8] == _PNG_SIGNATURE
                and len(header) == 26 else f"{channels} channels")
        raise DataError(f"{path}: {mode}, expected grayscale (1 channel) or colour (3 channels); "
                        "save it without the alpha channel")
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

    Every file is decoded before any error is raised, and the one
    :class:`DataError` names every bad file.

    Examples
    --------
    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> load_images(sorted(map(str, root.rglob("*.jpg")))[:3]).shape
    (3, 200, 200, 1)
    """
    images = _decode_all(list(paths), lambda p: read_image(p, color, size))
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


def without_autotuning(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with ``tf.data``'s autotuning switched off (parallel steps then use every core).

    With autotuning on, on a 2-core machine, many epochs ran the training step on one
    core only, at random, for the same CPU time: a ViT epoch took 20 s instead of
    10 s, and lesson 4's ResUNet (128x800, images read from disk) 41 s instead of
    22 s. With it off, every epoch used both cores.

    Examples
    --------
    >>> import tensorflow as tf
    >>> without_autotuning(tf.data.Dataset.range(3)).options().autotune.enabled
    False
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def neu_datasets(data: NEUData, image_size: tuple[int, int] | None = None, color: str = "grayscale",
                 batch_size: int = 32, seed: int | None = None, splits: tuple[str, ...] = ("train", "validation")):
    """One ``tf.data`` pipeline per split: ``(images float32 0-255, integer labels)``.

    ``splits`` names the pipelines returned, in order: training and validation by
    default; ``("train", "validation", "test")`` after :func:`with_test_split`.

    Images are decoded once into memory (the cache), kept at the native 200x200
    unless ``image_size`` asks otherwise, and prefetched, with tf.data's autotuning
    off (:func:`without_autotuning`). Only the training pipeline is shuffled (again
    every epoch); the others always yield the images in the order of
    ``data.split(name)``, so labels gathered from them line up with predictions.

    Examples
    --------
    >>> data = NEUData(Path("."), "synthetic", index_neu(make_synthetic_neu("/tmp/neu-doc", per_class=5)))
    >>> train, val = neu_datasets(data, batch_size=4)
    >>> x, y = next(iter(val))
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
    n_val = max(1, round(per_class * validation_fraction))

    def write(folder: Path) -> None:
        for k, name in enumerate(CLASS_NAMES):
            for i in range(1, per_class + 1):
                rng = np.random.default_rng([seed, k, i])
                image, boxes = _draw_defect(name, rng, size)
                split = "validation" if i > per_class - n_val else "train"
                filename = f"{name}_{i}.jpg"
                image_dir, xml_dir = folder / split / "images" / name, folder / split / "annotations"
                image_dir.mkdir(parents=True, exist_ok=True)
                xml_dir.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(image_dir / filename), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
                (xml_dir / f"{name}_{i}.xml").write_text(_voc_xml(filename, name, size, boxes))
        (folder / SYNTHETIC_MARKER).write_text(f"Synthetic NEU stand-in made by defectlib: per_class={per_class} "
                                               f"seed={seed} size={size}. Not real data.\n")

    # Written whole, then renamed (write_complete): parallel notebooks never read a half-written set.
    return write_complete(Path(root) / "NEU-DET", write, SYNTHETIC_MARKER)
