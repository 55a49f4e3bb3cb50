"""Synthetic stand-ins for NEU and Severstal, written in the real data sets' on-disk formats."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from defectlib.config import current, write_complete
from defectlib.rle import rle_encode

SYNTHETIC_MARKER = "SYNTHETIC.txt"
"""Written last into a generated set: a folder without it is half-written."""


def _draw_defect(name: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """One synthetic image of class ``name`` and its defect boxes (xmin, ymin, xmax, ymax)."""
    low = cv2.resize(rng.normal(0, 1, (6, 6)), (size, size), interpolation=cv2.INTER_CUBIC)
    image = 128 + 12 * low + rng.normal(0, 6, (size, size))
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
    return np.clip(image + layer, 0, 255).astype(np.uint8), [tuple(int(np.clip(v, 0, size - 1)) for v in b) for b in boxes]


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
    """Write (or reuse) a deterministic NEU stand-in in the Kaggle layout, with VOC boxes; return its ``NEU-DET``.

    >>> root = make_synthetic_neu("/tmp/neu-doc", per_class=5)
    >>> sorted(p.name for p in (root / "train" / "images").iterdir())[:3]
    ['crazing', 'inclusion', 'patches']
    """
    from defectlib.neu import CLASS_NAMES  # neu imports this module

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

    return write_complete(Path(root) / "NEU-DET", write, SYNTHETIC_MARKER)


def default_synthetic_size() -> int:
    """The number of images of the synthetic Severstal stand-in: 800, or 24 in fast mode.

    >>> default_synthetic_size() in (24, 800)
    True
    """
    return current().pick(full=800, fast=24)


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
    """The mask of one defect of class ``cls`` (shaped like real masks) and its change of brightness."""
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


def make_synthetic_severstal(root: str | Path, n_images: int | None = None, seed: int = 0, height: int = 256,
                             width: int = 1600) -> Path:
    """Write (or reuse) a deterministic stand-in in the Severstal format (``train_images/``, ``train.csv``).

    Parameters
    ----------
    n_images : default :func:`default_synthetic_size`; about half are defect-free, as in Kaggle's set.

    >>> import tempfile
    >>> root = make_synthetic_severstal(Path(tempfile.mkdtemp()) / "s", n_images=5, height=64, width=400)
    >>> sorted(p.name for p in root.iterdir()), len(list((root / "train_images").iterdir()))
    (['SYNTHETIC.txt', 'train.csv', 'train_images'], 5)
    """
    n_images = default_synthetic_size() if n_images is None else n_images

    def write(folder: Path) -> None:
        rng = np.random.default_rng(seed)
        images_dir = folder / "train_images"
        images_dir.mkdir()
        ids: list[str] = []
        while len(ids) < n_images:
            name = f"{int(rng.integers(16**9)):09x}.jpg"
            if name not in ids:
                ids.append(name)
        # Kaggle's shares: 47 % defect-free, 3.4 % two classes; masks 73 % class 3, 13 % 1, 11 % 4, 3 % 2.
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
            f"SYNTHETIC stand-in for the Severstal data, made by defectlib.synthetic.make_synthetic_severstal"
            f"(n_images={n_images}, seed={seed}, height={height}, width={width}).\n"
            "Numbers computed on it are not real results.\n"
        )

    return write_complete(root, write, SYNTHETIC_MARKER)
