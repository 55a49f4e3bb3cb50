"""Image files: list, decode and check them, and read them into arrays or ``tf.data`` tensors."""

from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from defectlib.errors import DataError, raise_all
from defectlib.rle import SEVERSTAL_SHAPE

if TYPE_CHECKING:
    import tensorflow as tf


NATIVE_SIZE = (200, 200)
"""NEU's image size: :func:`read_image` expects it unless asked to resize."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
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

    Rejects missing, empty and undecodable files and truncated JPEGs (cut before their end marker, or
    closed early, which leaves the flat grey 128 a decoder fills in). ``flags``: OpenCV's ``imread`` flags.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grey.png"
    >>> _ = cv2.imwrite(str(path), np.full((4, 6), 90, np.uint8))
    >>> decode_image_file(path).shape
    (4, 6)
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
    """``decode`` every path in a thread pool; then one DataError naming every bad file."""
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

    ``color`` is ``"grayscale"`` or ``"rgb"``. Without ``size`` the image must be NEU's 200x200; with it,
    it is resized (area averaging).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grey.png"
    >>> _ = cv2.imwrite(str(path), np.full((200, 200), 90, np.uint8))
    >>> read_image(path, "rgb", size=(64, 64)).shape
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
    """Decode many images in parallel into one ``uint8`` array (N, H, W, C); one DataError names every bad file.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grey.png"
    >>> _ = cv2.imwrite(str(path), np.full((200, 200), 90, np.uint8))
    >>> load_images([path, path]).shape
    (2, 200, 200, 1)
    """
    images = _decode_all(list(paths), lambda p: read_image(p, color, size))
    if not images:
        raise DataError("no images to load")
    return np.stack(images)


def without_autotuning(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with ``tf.data``'s autotuning off: on 2 cores it sometimes left one core idle for whole epochs.

    >>> import tensorflow as tf
    >>> without_autotuning(tf.data.Dataset.range(3)).options().autotune.enabled
    False
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)



def list_images(images_dir: str | Path) -> list[str]:
    """Sorted names of the ``.jpg``, ``.jpeg`` and ``.png`` files in a folder; hidden files (``._a.jpg``) skipped.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ["b.jpg", "a.jpg", "notes.txt", "._a.jpg"]:
    ...     _ = (folder / name).write_bytes(b"")
    >>> list_images(folder)
    ['a.jpg', 'b.jpg']
    """
    return sorted(p.name for p in Path(images_dir).iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _check_image(path: Path, size: tuple[int, int] | None) -> None:
    image = decode_image_file(path, cv2.IMREAD_GRAYSCALE)
    if size is not None and image.shape != tuple(size):
        raise DataError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, expected {size[1]}x{size[0]} "
                        "(width x height)")


def check_images(paths: Sequence[str | Path], size: tuple[int, int] | None = SEVERSTAL_SHAPE) -> None:
    """Decode every image in parallel; one DataError names every bad file, and every one not of ``size``.

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "x.jpg"
    >>> _ = bad.write_bytes(b"")
    >>> check_images([bad])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    defectlib.errors.DataError: Image files: 1 problem(s); fix them and try again:
      .../x.jpg: empty file (0 bytes)
    """
    _decode_all(list(paths), lambda p: _check_image(Path(p), size))


def jpeg_scale(source_size: tuple[int, int], size: tuple[int, int]) -> int:
    """The factor (1, 2, 4 or 8) that shrinks ``source_size`` to exactly ``size``, or 0 when there is none.

    >>> jpeg_scale((256, 1600), (64, 400)), jpeg_scale((256, 1600), (256, 1600)), jpeg_scale((256, 1600), (64, 384))
    (4, 1, 0)
    """
    (height, width), (h, w) = tuple(source_size), tuple(size)
    return next((s for s in (1, 2, 4, 8) if (height, width) == (h * s, w * s)), 0)


def decode_image_at(
    contents: tf.Tensor, size: tuple[int, int], source_size: tuple[int, int] | None = None
) -> tf.Tensor:
    """Decode an image file's bytes to float32 RGB (0..255) of ``size`` (height, width), as training and prediction do.

    A JPEG of ``source_size`` exactly 2, 4 or 8 times ``size`` is shrunk by the JPEG decoder itself;
    any other file is decoded in full and resized (bilinear, antialiased). Works eagerly and in ``tf.data``.

    >>> import tensorflow as tf
    >>> jpeg = tf.io.encode_jpeg(tf.fill((256, 1600, 3), tf.constant(200, tf.uint8)))
    >>> decode_image_at(jpeg, (64, 400), (256, 1600)).shape
    TensorShape([64, 400, 3])
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


def load_image_tensor(path: tf.Tensor, size: tuple[int, int], source_size: tuple[int, int] | None) -> tf.Tensor:
    """Read a file and :func:`decode_image_at` it."""
    import tensorflow as tf

    return decode_image_at(tf.io.read_file(path), size, source_size)


@functools.lru_cache(maxsize=8)
def _reader(size: tuple[int, int], source_size: tuple[int, int]) -> Callable:
    """One compiled TensorFlow function that reads a batch of files at ``size``."""
    import tensorflow as tf

    image = tf.TensorSpec((*size, 3), tf.float32)
    function = tf.function(lambda paths: tf.map_fn(lambda path: load_image_tensor(path, size, source_size), paths,
                                                   fn_output_signature=image, parallel_iterations=8),
                           input_signature=[tf.TensorSpec([None], tf.string)])
    function(tf.constant([], tf.string))   # built and run once now (no files): later calls only read
    return function


def load_severstal_images(images_dir: str | Path, image_ids: Sequence[str], size: tuple[int, int] | None = None,
                          source_size: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """Read Severstal image files into ``(n, height, width, 3)``: ``uint8`` as stored, or float32 at ``size``.

    At ``size`` they are read by :func:`decode_image_at`, as in training.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(folder / "a.jpg"), np.zeros((64, 400, 3), np.uint8))
    >>> load_severstal_images(folder, ["a.jpg"], (32, 200), source_size=(64, 400)).shape
    (1, 32, 200, 3)
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

    >>> resize_images(np.zeros((2, 256, 1600, 3), "uint8"), (64, 400)).shape
    (2, 64, 400, 3)
    """
    images = np.asarray(images)
    if size is None or images.shape[1:3] == tuple(size):
        return images.astype(np.float32)
    import tensorflow as tf

    return tf.image.resize(images, tuple(size), antialias=True).numpy()

