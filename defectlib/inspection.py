"""Lesson 5's measuring tools: class activation maps, the pointing game, calibration and LiteRT export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


# --------------------------------------------------------------------------- where it looks


def map_peaks(maps: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Pixel ``(x, y)`` of each map's maximum: the centre of its cell, scaled to the image.

    >>> maps = np.zeros((1, 4, 4)); maps[0, 1, 3] = 1
    >>> map_peaks(maps, (200, 200)).tolist()
    [[175.0, 75.0]]
    """
    n, h, w = maps.shape
    rows, cols = np.unravel_index(maps.reshape(n, -1).argmax(axis=1), (h, w))
    return np.stack([(cols + 0.5) * image_size[1] / w, (rows + 0.5) * image_size[0] / h], axis=1)


def boxes_by_image(paths, class_names, boxes: pd.DataFrame) -> list[np.ndarray]:
    """For each image, its boxes of its own class as an ``(m, 4)`` array ``xmin, ymin, xmax, ymax``.

    Matched by file name without extension: some NEU annotations omit ``.jpg``.

    >>> boxes = pd.DataFrame({"file": ["a.jpg", "a.jpg"], "class_name": ["x", "y"],
    ...                       "xmin": [0, 5], "ymin": [0, 5], "xmax": [9, 9], "ymax": [9, 9]})
    >>> boxes_by_image(["/d/a.jpg"], ["y"], boxes)[0].tolist()
    [[5, 5, 9, 9]]
    """
    stems = boxes["file"].map(lambda f: Path(f).stem)
    groups = {key: g[["xmin", "ymin", "xmax", "ymax"]].to_numpy()
              for key, g in boxes.assign(stem=stems).groupby(["stem", "class_name"])}
    empty = np.zeros((0, 4), int)
    return [groups.get((Path(p).stem, c), empty) for p, c in zip(paths, class_names)]


def inside_any(point, boxes: np.ndarray) -> bool:
    """True when the pixel ``point = (x, y)`` lies in one of ``boxes`` (edges included).

    >>> inside_any((10, 20), np.array([[0, 0, 10, 10], [5, 15, 12, 30]]))
    True
    """
    x, y = point
    boxes = np.asarray(boxes).reshape(-1, 4)
    return bool(((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])).any())


def box_share(boxes: np.ndarray, image_size: tuple[int, int]) -> float:
    """Share of the image area covered by the union of ``boxes``: the hit chance of a random point.

    >>> box_share(np.array([[0, 0, 99, 199], [50, 0, 149, 199]]), (200, 200))
    0.75
    """
    covered = np.zeros(image_size, bool)
    for xmin, ymin, xmax, ymax in np.asarray(boxes).reshape(-1, 4):
        covered[ymin:ymax + 1, xmin:xmax + 1] = True
    return float(covered.mean())


def pointing_game(peaks: np.ndarray, boxes: list[np.ndarray], image_size: tuple[int, int]) -> pd.DataFrame:
    """Hit or miss per image for the map maxima and the image centre, and a random point's hit chance.

    >>> game = pointing_game(np.array([[5.0, 5.0]]), [np.array([[0, 0, 9, 9]])], (20, 20))
    >>> game.to_dict("records")
    [{'map': True, 'centre': False, 'random': 0.25}]
    """
    if len(peaks) != len(boxes):
        raise ValueError(f"{len(peaks)} peaks for {len(boxes)} images")
    missing = [i for i, b in enumerate(boxes) if len(b) == 0]
    if missing:
        raise ValueError(f"images {missing[:5]} have no box of their class: check the annotations (read_boxes)")
    centre = (image_size[1] / 2, image_size[0] / 2)
    return pd.DataFrame({"map": [inside_any(p, b) for p, b in zip(peaks, boxes)],
                         "centre": [inside_any(centre, b) for b in boxes],
                         "random": [box_share(b, image_size) for b in boxes]})


# --------------------------------------------------------------------------- how far to trust it


def reliability_table(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Count, mean confidence (top probability) and accuracy per equal-width confidence bin; empty bins left out.

    >>> p = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    >>> reliability_table(p, np.array([0, 1, 0, 0])).round(2).to_dict("list")
    {'count': [2, 2], 'confidence': [0.55, 0.95], 'accuracy': [1.0, 0.5]}
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    table = pd.DataFrame({"bin": which, "confidence": confidence, "accuracy": correct})
    table = table.groupby("bin").agg(count=("accuracy", "size"), confidence=("confidence", "mean"),
                                     accuracy=("accuracy", "mean"))
    table.index = pd.Index([f"{b / bins:.1f}-{(b + 1) / bins:.1f}" for b in table.index], name="confidence bin")
    return table


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over bins weighted by their size.

    >>> p = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    >>> round(expected_calibration_error(p, np.array([0, 1, 0, 0])), 4)
    0.45
    """
    table = reliability_table(probabilities, labels, bins)
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["confidence"] - table["accuracy"]).abs()).sum())


def accuracy_coverage(probabilities: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Reject option: per confidence threshold (highest first), the share of images kept and their accuracy.

    >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3]])
    >>> accuracy_coverage(p, np.array([0, 1, 0])).to_dict("list")
    {'threshold': [0.9, 0.7, 0.6], 'coverage': [0.3333333333333333, 0.6666666666666666, 1.0], 'accuracy': [1.0, 1.0, 0.6666666666666666]}
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    confidence = probabilities.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    correct = (probabilities.argmax(axis=1) == labels)[order]
    kept = np.arange(1, len(order) + 1)
    table = pd.DataFrame({"threshold": confidence[order], "coverage": kept / len(order),
                          "accuracy": np.cumsum(correct) / kept})
    return table.groupby("threshold", sort=False).last().reset_index()


# --------------------------------------------------------------------------- how to ship it


def export_litert(model, path: str | Path, optimizations: list | None = None,
                  representative_dataset=None) -> Path:
    """Write a one-input Keras ``model`` as a LiteRT (``.tflite``) file, in inference mode.

    Not ``model.export(format="litert")``: that crashes in Colab's stack (TensorFlow 2.20, Keras 3.13).

    Parameters
    ----------
    optimizations : the converter's optimizations, e.g. ``[tf.lite.Optimize.DEFAULT]`` for 8 bits.
    representative_dataset : a function yielding ``[batch]`` lists, to calibrate 8-bit values.

    >>> import keras, tempfile
    >>> file = export_litert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]),
    ...                      f"{tempfile.mkdtemp()}/dense.tflite")
    >>> file.read_bytes()[4:8]  # the FlatBuffer identifier of a LiteRT model
    b'TFL3'
    """
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise ValueError(f"export_litert: {model.name} has {len(model.inputs)} inputs, expected one")
    spec = tf.TensorSpec(model.inputs[0].shape, model.inputs[0].dtype)
    function = tf.function(lambda images: model(images, training=False)).get_concrete_function(spec)
    weights = tf.Module()  # holds the TensorFlow variables under the Keras ones, so that their values are kept
    weights.variables_to_keep = [variable.value for variable in model.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], weights)
    converter.optimizations = list(optimizations or [])
    if representative_dataset is not None:
        converter.representative_dataset = representative_dataset
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the converter logs "INFO:tensorflow:Assets written to: /tmp/..." otherwise
    try:
        flatbuffer = converter.convert()
    finally:
        logger.setLevel(level)
    path = Path(path)
    path.write_bytes(flatbuffer)
    return path


def litert_predict(model_file: str | Path | bytes, images: np.ndarray) -> np.ndarray:
    """Run a LiteRT model (a path or its bytes) one image at a time with ``ai_edge_litert``, no TensorFlow.

    >>> import keras, tempfile
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    >>> path = export_litert(model, f"{tempfile.mkdtemp()}/m.tflite")
    >>> x = np.eye(3, dtype="float32")
    >>> bool(np.allclose(litert_predict(path, x), model.predict(x, verbose=0), atol=1e-6))
    True
    """
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model_file, bytes):
        interpreter = Interpreter(model_content=model_file)
    else:
        interpreter = Interpreter(model_path=str(model_file))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in np.asarray(images, "float32"):
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0].copy())
    return np.stack(outputs)


# --------------------------------------------------------------------------- figures


def show_maps(images: np.ndarray, maps: np.ndarray, boxes: list[np.ndarray], titles: list[str], cols: int = 6):
    """Images in gray with their maps overlaid, annotated boxes in green and each map's peak as a red cross.

    >>> fig = show_maps(np.zeros((2, 20, 20, 1)), np.ones((2, 4, 4)), [np.array([[2, 2, 9, 9]])] * 2, ["a", "b"])
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(images)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, min(cols, n), figsize=(2.2 * min(cols, n), 2.4 * rows), squeeze=False)
    height, width = images.shape[1:3]
    peaks = map_peaks(maps, (height, width))
    for ax, image, heat, image_boxes, peak, title in zip(axes.flat, images, maps, boxes, peaks, titles):
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
        ax.imshow(heat, cmap="jet", alpha=0.4, extent=(0, width, height, 0), interpolation="bilinear")
        for xmin, ymin, xmax, ymax in image_boxes:
            ax.add_patch(Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False, color="lime", lw=1.5))
        ax.plot(*peak, "r+", markersize=14, mew=2)
        ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_reliability(tables: dict[str, pd.DataFrame]):
    """Reliability diagram: accuracy against mean confidence per bin, one line per table, the diagonal as ideal.

    >>> p = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> fig = plot_reliability({"model": reliability_table(p, np.array([0, 1]))})
    >>> fig.axes[0].get_xlabel()
    'confidence (top probability)'
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for name, table in tables.items():
        ax.plot(table["confidence"], table["accuracy"], "o-", label=name)
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
