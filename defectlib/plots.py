"""Figures the lessons share: data exploration, architectures, training curves, evaluation.

Every function draws on a new (or given) matplotlib figure and returns it, so a
notebook cell shows it and a test can inspect it.
"""

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

    Examples
    --------
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

    Examples
    --------
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

    Examples
    --------
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

    ``history`` is a Keras ``History`` or its ``.history`` dict. ``phase_starts``
    marks epochs where a new phase began (e.g. fine-tuning) with a dashed line.

    Examples
    --------
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

    Examples
    --------
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
    """Confusion matrix as a heat map (rows: true class, columns: predicted class).

    Examples
    --------
    >>> fig = plot_confusion([0, 1, 1], [0, 1, 0], ["a", "b"])
    >>> fig.axes[0].get_xlabel()
    'predicted'
    """
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    labels = list(range(len(class_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true" if normalize else None)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.0 * len(labels) + 1.5))
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False,
                xticklabels=class_names, yticklabels=class_names, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_architecture(model, title: str | None = None):
    """Draw a model's layers as a column of boxes with their output shapes.

    Needs no Graphviz (unlike ``keras.utils.plot_model``), so it works everywhere.

    Examples
    --------
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
