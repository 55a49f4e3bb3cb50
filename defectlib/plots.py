"""Figures the lessons share; each function returns its matplotlib figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _grid(n: int, cols: int, size: float = 2.2):
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def _show(ax, image: np.ndarray) -> None:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    vmax = 255 if image.max() > 1.0 else 1.0
    ax.imshow(image.astype(np.float32) / vmax, cmap="gray", vmin=0, vmax=1)


def plot_class_counts(counts: pd.DataFrame | pd.Series, title: str = "Images per class"):
    """Bar chart of images per class (one bar group per column, e.g. per split).

    >>> fig = plot_class_counts(pd.Series({"a": 3, "b": 5}))
    >>> len(fig.axes[0].patches)
    2
    """
    fig, ax = plt.subplots(figsize=(8, 3.5))
    counts.plot.bar(ax=ax, rot=30)
    ax.set_ylabel("images")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_samples(images: np.ndarray, labels: Sequence[int], class_names: Sequence[str], cols: int = 6,
                 n: int | None = None):
    """A grid of images titled with their class names.

    >>> fig = plot_samples(np.zeros((4, 8, 8, 1)), [0, 1, 0, 1], ["a", "b"], cols=2)
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b', 'a', 'b']
    """
    n = len(images) if n is None else min(n, len(images))
    fig, axes = _grid(n, cols)
    for ax, image, label in zip(axes, images[:n], labels[:n]):
        _show(ax, image)
        ax.set_title(class_names[int(label)], fontsize=9)
    fig.tight_layout()
    return fig


def plot_predictions(images: np.ndarray, y_true: Sequence[int], y_pred: Sequence[int],
                     class_names: Sequence[str], cols: int = 6, n: int = 18):
    """A grid of predictions: green title when right, red when wrong (with the true class).

    >>> fig = plot_predictions(np.zeros((2, 8, 8)), [0, 1], [0, 0], ["a", "b"])
    >>> [ax.title.get_color() for ax in fig.axes[:2]]
    ['green', 'red']
    """
    n = min(n, len(images))
    fig, axes = _grid(n, cols)
    for ax, image, t, p in zip(axes, images[:n], y_true[:n], y_pred[:n]):
        _show(ax, image)
        right = int(t) == int(p)
        title = class_names[int(p)] if right else f"{class_names[int(p)]}\n(true: {class_names[int(t)]})"
        ax.set_title(title, color="green" if right else "red", fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history: Mapping[str, Sequence[float]] | object, metrics: Sequence[str] = ("accuracy", "loss"),
                 phase_starts: Sequence[int] = (), title: str = ""):
    """Learning curves (training and validation) for each metric, side by side.

    Parameters
    ----------
    history : a Keras ``History`` or its ``.history`` dict.
    phase_starts : epochs where a new phase (e.g. fine-tuning) began, marked by a dashed line.

    >>> fig = plot_history({"loss": [2, 1], "val_loss": [2.1, 1.5], "accuracy": [.5, .7],
    ...                     "val_accuracy": [.4, .6]}, phase_starts=[1])
    >>> [ax.get_title() for ax in fig.axes]
    ['accuracy', 'loss']
    """
    logs = getattr(history, "history", history)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], "o-", ms=3, label="training")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "o-", ms=3, label="validation")
        for start in phase_starts:
            ax.axvline(start + 0.5, color="grey", ls="--", lw=1)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def merge_histories(*histories: Mapping[str, Sequence[float]] | object) -> dict[str, list[float]]:
    """Join the logs of consecutive training phases into one history (for :func:`plot_history`).

    >>> merge_histories({"loss": [3, 2]}, {"loss": [1]})
    {'loss': [3.0, 2.0, 1.0]}
    """
    merged: dict[str, list[float]] = {}
    for h in histories:
        for key, values in getattr(h, "history", h).items():
            merged.setdefault(key, []).extend(float(v) for v in values)
    return merged


def plot_confusion(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str],
                   normalize: bool = False, title: str = "Confusion matrix"):
    """Confusion matrix (rows: true class, columns: predicted class), drawn by scikit-learn.

    Parameters
    ----------
    normalize : show the share of each true class instead of counts.

    >>> fig = plot_confusion([0, 1, 1], [0, 1, 0], ["a", "b"])
    >>> fig.axes[0].get_xlabel(), [t.get_text() for t in fig.axes[0].texts]
    ('predicted', ['1', '0', '1', '1'])
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.0 * n + 1.5))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(n)), display_labels=list(class_names),
                                            normalize="true" if normalize else None, cmap="Blues", colorbar=False,
                                            values_format=".2f" if normalize else "d", ax=ax, xticks_rotation=30)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_architecture(model, title: str | None = None):
    """Draw a model's layers as a column of boxes with their output shapes (no Graphviz needed).

    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> fig = plot_architecture(m)
    >>> [t.get_text().split()[0] for t in fig.axes[0].texts if t.get_text()]
    ['Input', 'Flatten', 'Dense']
    """
    layers = [("Input", tuple(model.inputs[0].shape))] + [
        (f"{layer.__class__.__name__}  ({layer.name})", tuple(layer.output.shape)) for layer in model.layers]
    n = len(layers)
    fig, ax = plt.subplots(figsize=(6.5, 0.42 * n + 0.6))
    colours = plt.get_cmap("tab20")
    for i, (name, shape) in enumerate(layers):
        y = n - 1 - i
        kind = name.split()[0]
        ax.add_patch(plt.Rectangle((0, y + 0.08), 1, 0.84, color=colours(sum(map(ord, kind)) % 20), alpha=0.55))
        ax.text(0.02, y + 0.5, f"{name}   →  {shape[1:]}", va="center", fontsize=8.5, family="monospace")
        if i:
            ax.annotate("", (0.5, y + 0.92), (0.5, y + 1.08), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, n)
    ax.axis("off")
    ax.set_title(title or f"{model.name}: {model.count_params():,} parameters", fontsize=10)
    fig.tight_layout()
    return fig


CLASS_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231")


def overlay_masks(image: np.ndarray, masks: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """An RGB float image (0..1) with each class's mask of ``(height, width, classes)`` painted over it.

    >>> m = np.zeros((2, 2, 4)); m[0, 0, 0] = 1
    >>> [round(float(v), 2) for v in overlay_masks(np.zeros((2, 2)), m, alpha=1.0)[0, 0]]
    [0.9, 0.1, 0.29]
    """
    from matplotlib.colors import to_rgb

    image = np.asarray(image, dtype=np.float32)
    image = image / 255.0 if image.max() > 1.0 else image
    if image.ndim == 2:
        image = image[..., None]
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3].copy()
    masks = np.asarray(masks)
    for k in range(masks.shape[-1]):
        on = masks[..., k] > 0
        rgb[on] = (1 - alpha) * rgb[on] + alpha * np.array(to_rgb(CLASS_COLOURS[k % len(CLASS_COLOURS)]))
    return rgb


def _class_legend(fig, n_classes: int = 4) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=CLASS_COLOURS[k], label=f"class {k + 1}") for k in range(n_classes)]
    fig.legend(handles=handles, loc="upper center", ncol=n_classes, fontsize=8, frameon=False)


def plot_masks(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], titles: Sequence[str] | None = None,
               width: float = 11.0):
    """Images (one per row, e.g. 1600x256 steel strips) with their class masks overlaid in colour.

    >>> fig = plot_masks(np.zeros((2, 4, 16)), np.zeros((2, 4, 16, 4)), ["a", "b"])
    >>> [ax.get_title("left") for ax in fig.axes]
    ['a', 'b']
    """
    n = len(images)
    height, image_width = np.shape(images[0])[:2]
    fig, axes = plt.subplots(n, 1, figsize=(width, n * width * height / image_width + 0.5 * n + 0.4), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.imshow(overlay_masks(images[i], masks[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9, loc="left")
    _class_legend(fig, np.shape(masks[0])[-1])
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_mask_comparison(images: Sequence[np.ndarray], true_masks: Sequence[np.ndarray],
                         pred_masks: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                         width: float = 14.0):
    """Ground truth (left) beside prediction (right), one image per row.

    >>> z = np.zeros((1, 4, 16, 4))
    >>> fig = plot_mask_comparison(np.zeros((1, 4, 16)), z, z, ["a"])
    >>> [ax.get_title("left") for ax in fig.axes]
    ['a: ground truth', 'a: predicted']
    """
    n = len(images)
    height, image_width = np.shape(images[0])[:2]
    fig, axes = plt.subplots(n, 2, figsize=(width, n * width / 2 * height / image_width + 0.5 * n + 0.4),
                             squeeze=False)
    for i in range(n):
        for ax, masks, what in ((axes[i, 0], true_masks[i], "ground truth"), (axes[i, 1], pred_masks[i], "predicted")):
            ax.imshow(overlay_masks(images[i], masks))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{titles[i]}: {what}" if titles is not None else what, fontsize=9, loc="left")
    _class_legend(fig, np.shape(true_masks[0])[-1])
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_roc_pr(y_true: Sequence[int], scores: Sequence[float], threshold: float | None = None,
                title: str = ""):
    """ROC and precision-recall curves of a binary classifier's scores, by scikit-learn.

    Parameters
    ----------
    y_true : 1 for a defective image, 0 for a clean one.
    threshold : the operating point ``score >= threshold`` to mark, if any.

    >>> fig = plot_roc_pr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.35)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['false positive rate', 'recall (defective images found)']
    """
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float).ravel()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    RocCurveDisplay.from_predictions(y_true, scores, name="ROC", ax=left)
    left.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
    PrecisionRecallDisplay.from_predictions(y_true, scores, name="PR", ax=right)
    right.axhline(y_true.mean(), color="grey", ls="--", lw=1, label="chance (share of defects)")
    if threshold is not None:  # the course's operating point, on both curves
        predicted = scores >= threshold
        tp = (predicted & (y_true == 1)).sum()
        point_recall = tp / max((y_true == 1).sum(), 1)
        point_fpr = (predicted & (y_true == 0)).sum() / max((y_true == 0).sum(), 1)
        point_precision = tp / max(predicted.sum(), 1)
        label = f"threshold {threshold:.3g}"
        left.plot(point_fpr, point_recall, "o", color="crimson", ms=8, label=label)
        right.plot(point_recall, point_precision, "o", color="crimson", ms=8, label=label)
    left.set(xlabel="false positive rate", ylabel="true positive rate (recall)")
    right.set(xlabel="recall (defective images found)", ylabel="precision")
    for ax in (left, right):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is left else "lower left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_rle_grid(mask: np.ndarray, title: str = ""):
    """A small mask drawn as a grid, each pixel labelled with its Kaggle RLE number.

    >>> fig = plot_rle_grid(np.eye(3, dtype="uint8"))
    >>> [t.get_text() for t in fig.axes[0].texts][:4]
    ['1', '4', '7', '2']
    """
    mask = np.asarray(mask)
    height, width = mask.shape
    fig, ax = plt.subplots(figsize=(0.55 * width + 0.6, 0.55 * height + 0.6))
    ax.imshow(mask, cmap="Blues", vmin=0, vmax=1.6)
    for row in range(height):
        for col in range(width):
            ax.text(col, row, str(col * height + row + 1), ha="center", va="center", fontsize=10,
                    color="white" if mask[row, col] else "black")
    ax.set_xticks(np.arange(width))
    ax.set_yticks(np.arange(height))
    ax.set_xticks(np.arange(-0.5, width), minor=True)
    ax.set_yticks(np.arange(-0.5, height), minor=True)
    ax.grid(which="minor", color="grey", lw=1)
    ax.tick_params(which="both", length=0)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title(title or "pixel numbers (down each column, then the next column)", fontsize=9)
    fig.tight_layout()
    return fig


def _draw_patch_grid(ax, image: np.ndarray, patch_size: int) -> None:
    """The image with its patch grid and the patches' numbers in reading order."""
    (height, width), rows, cols = image.shape, image.shape[0] // patch_size, image.shape[1] // patch_size
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    for k in range(1, rows):
        ax.axhline(k * patch_size - 0.5, color="orange", lw=0.8)
    for k in range(1, cols):
        ax.axvline(k * patch_size - 0.5, color="orange", lw=0.8)
    if rows * cols <= 100:
        for r in range(rows):
            for c in range(cols):
                ax.text(c * patch_size + 2, r * patch_size + 2, str(r * cols + c), color="yellow",
                        fontsize=7, va="top", ha="left")
    ax.set_title(f"{height}x{width} image, {patch_size}x{patch_size} patches: "
                 f"{rows} x {cols} = {rows * cols} tokens", fontsize=10)
    ax.axis("off")


def plot_patches(image: np.ndarray, patch_size: int, n_tokens: int = 16, title: str | None = None):
    """How a vision transformer reads an image: the patch grid, the patches apart, and the sequence.

    >>> fig = plot_patches(np.zeros((40, 40, 1)), patch_size=10, n_tokens=5)
    >>> len(fig.axes), fig.axes[0].get_title()
    (3, '40x40 image, 10x10 patches: 4 x 4 = 16 tokens')
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., 0]
    height, width = image.shape
    rows, cols = height // patch_size, width // patch_size
    if rows == 0 or cols == 0 or height % patch_size or width % patch_size:
        raise ValueError(f"a {height}x{width} image cannot be cut into {patch_size}x{patch_size} patches")
    image = image / (255.0 if image.max() > 1.0 else 1.0)
    patches = image.reshape(rows, patch_size, cols, patch_size).swapaxes(1, 2)  # (rows, cols, p, p)
    gap = max(1, patch_size // 6)
    step = patch_size + gap
    cmap = plt.get_cmap("gray").with_extremes(bad="white")  # the gaps between patches are NaN

    fig = plt.figure(figsize=(10, 6.6))
    grid = fig.add_gridspec(2, 2, height_ratios=[3.2, 1])
    _draw_patch_grid(fig.add_subplot(grid[0, 0]), image, patch_size)

    apart = np.full((rows * step - gap, cols * step - gap), np.nan)
    for r in range(rows):
        for c in range(cols):
            apart[r * step:r * step + patch_size, c * step:c * step + patch_size] = patches[r, c]
    ax = fig.add_subplot(grid[0, 1])
    ax.imshow(apart, cmap=cmap, vmin=0, vmax=1)
    ax.set_title("the same patches, pulled apart", fontsize=10)
    ax.axis("off")

    n = min(n_tokens, rows * cols)
    strip = np.full((patch_size, n * step - gap), np.nan)
    for k in range(n):
        strip[:, k * step:k * step + patch_size] = patches[k // cols, k % cols]
    ax = fig.add_subplot(grid[1, :])
    ax.imshow(strip, cmap=cmap, vmin=0, vmax=1)
    for k in range(n):
        ax.text(k * step + patch_size / 2, patch_size + gap, str(k), ha="center", va="top", fontsize=8)
    more = f" (of {rows * cols})" if n < rows * cols else ""
    ax.set_title(f"the sequence: patches 0-{n - 1}{more} in reading order, each flattened to "
                 f"{patch_size * patch_size} numbers and projected to one token", fontsize=10)
    ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
