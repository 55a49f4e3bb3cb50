"""The model comparison table: accuracy, training time, size and inference speed, all measured in this run.

Accuracy is chosen on validation and reported on test; size is the ``.keras`` file without optimizer state.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd


COLUMNS = ["val accuracy", "test accuracy", "train time (s)", "train CPU (s)", "epochs", "parameters", "size (MB)",
           "images/s", "note"]
"""The columns of :func:`comparison_table`, in order (the index is the model name)."""

_OPTIONAL = {"test accuracy": None, "train CPU (s)": None}

RANDOM_WEIGHTS_NOTE = "random stand-in weights (no download): accuracy not reported"


class Stopwatch:
    """Wall-clock and whole-process CPU seconds inside ``with`` blocks, added up over blocks.

    >>> clock = Stopwatch()
    >>> with clock:
    ...     _ = sum(range(10_000))
    >>> with clock:
    ...     _ = sum(range(10_000))
    >>> clock.laps, clock.wall > 0, clock.cpu >= 0
    (2, True, True)
    """

    def __init__(self) -> None:
        self.wall, self.cpu, self.laps = 0.0, 0.0, 0

    def __enter__(self) -> Stopwatch:
        self._start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._start[0]
        self.cpu += time.process_time() - self._start[1]
        self.laps += 1


def _inference_copy(model):
    """``model`` rebuilt from its config, same weights, no optimizer (``clone_model`` would recompile it)."""
    if getattr(model, "optimizer", None) is None:
        return model
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def size_on_disk_mb(model, path: str | Path, include_optimizer: bool = False) -> float:
    """Save ``model`` to ``path`` (``.keras``, no optimizer state by default) and return its size in MB (10^6 bytes).

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> size_on_disk_mb(model, "/tmp/compare-doc.keras") == Path("/tmp/compare-doc.keras").stat().st_size / 1e6
    True
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: save as a .keras file (the course's format)")
    path.parent.mkdir(parents=True, exist_ok=True)
    (model if include_optimizer else _inference_copy(model)).save(path)
    return path.stat().st_size / 1e6


def _batch(images: np.ndarray, batch_size: int) -> np.ndarray:
    """Exactly ``batch_size`` images: the first ones, repeated if there are fewer."""
    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0:
        raise ValueError("no images to time the model on")
    reps = int(np.ceil(batch_size / len(images)))
    return np.concatenate([images] * reps)[:batch_size]


def inference_speed(model, images: np.ndarray, batch_size: int = 32, warmup: int = 2, repeats: int = 5,
                    batches_per_repeat: int = 3) -> float:
    """Images per second of ``model.predict_on_batch``: median of ``repeats`` timed runs after ``warmup``.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> inference_speed(model, np.zeros((8, 4)), repeats=3) > 0
    True
    """
    if warmup < 1 or repeats < 1 or batches_per_repeat < 1:
        raise ValueError("warmup, repeats and batches_per_repeat must be at least 1")
    batch = _batch(images, batch_size)
    for _ in range(warmup):
        np.asarray(model.predict_on_batch(batch))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches_per_repeat):
            np.asarray(model.predict_on_batch(batch))  # np.asarray waits for the result
        seconds.append(time.perf_counter() - start)
    return batch_size * batches_per_repeat / statistics.median(seconds)


def dataset_accuracy(model, dataset) -> float:
    """Accuracy over one aligned pass of a pipeline (validation or test).

    >>> import keras, tensorflow as tf
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Softmax()])
    >>> x = np.array([[1, 0], [0, 1], [1, 0]], "float32")
    >>> dataset_accuracy(model, tf.data.Dataset.from_tensor_slices((x, [0, 1, 1])).batch(2))
    0.6666666666666666
    """
    _, y_true, probabilities = predict_dataset(model, dataset)
    return float(np.mean(probabilities.argmax(axis=1) == y_true))


def measure(name: str, model, val_ds, test_ds=None, clock: Stopwatch | None = None, epochs: int | None = None,
            note: str = "", real_weights: bool = True, workdir: str | Path | None = None, batch_size: int = 32,
            warmup: int = 2, repeats: int = 5, train_seconds: float | None = None,
            train_cpu_seconds: float | None = None) -> dict:
    """One row of the comparison: accuracy, training time, size on disk and speed of a trained model.

    Parameters
    ----------
    clock : a :class:`Stopwatch` around ``fit`` (else ``train_seconds`` and ``train_cpu_seconds``).
    real_weights : ``False`` for random stand-in weights: no accuracy, and the note says so.
    workdir : where ``<name>.keras`` is saved (a temporary folder when ``None``).
    """
    if clock is not None:
        train_seconds, train_cpu_seconds = clock.wall, clock.cpu
    images = []
    for x, _ in val_ds:
        images.append(np.asarray(x))
        if sum(len(b) for b in images) >= batch_size:
            break
    if not real_weights:
        note = "; ".join(n for n in (RANDOM_WEIGHTS_NOTE, note) if n)
    record = {"model": name,
              "val accuracy": dataset_accuracy(model, val_ds) if real_weights else None,
              "test accuracy": dataset_accuracy(model, test_ds) if real_weights and test_ds is not None else None,
              "train time (s)": None if train_seconds is None else float(train_seconds),
              "train CPU (s)": None if train_cpu_seconds is None else float(train_cpu_seconds),
              "epochs": epochs, "parameters": int(model.count_params()), "note": note}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        record["size (MB)"] = size_on_disk_mb(model, folder / f"{safe}.keras")
    record["images/s"] = inference_speed(model, np.concatenate(images), batch_size, warmup, repeats)
    return record


def train_and_record(name: str, model, train_ds, val_ds, epochs: int, callbacks: Sequence | None = None,
                     note: str = "", workdir: str | Path | None = None, verbose: int = 0, test_ds=None,
                     real_weights: bool = True, clock: Stopwatch | None = None, **measure_kwargs):
    """Train a compiled ``model`` inside ``clock``, :func:`measure` it, and return ``(record, history)``."""
    clock = clock or Stopwatch()
    with clock:
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=list(callbacks or []),
                            verbose=verbose)
    record = measure(name, model, val_ds, test_ds=test_ds, clock=clock, epochs=len(history.epoch), note=note,
                     real_weights=real_weights, workdir=workdir, **measure_kwargs)
    return record, history


def comparison_table(records: Sequence[Mapping]) -> pd.DataFrame:
    """One row per model (index ``model``), the :data:`COLUMNS` in order, as measured.

    >>> table = comparison_table([{"model": "a", "val accuracy": 0.9, "train time (s)": 12.0, "epochs": 3,
    ...                            "parameters": 1000, "size (MB)": 0.1, "images/s": 500.0, "note": ""}])
    >>> list(table.columns) == COLUMNS, table.index.tolist()
    (True, ['a'])
    """
    table = pd.DataFrame([{**_OPTIONAL, **r} for r in records])
    missing = [c for c in ["model", *COLUMNS] if c not in table.columns]
    if missing:
        raise ValueError(f"records lack the field(s) {missing}")
    if table["model"].duplicated().any():
        raise ValueError(f"two records have the same model name: {table['model'][table['model'].duplicated()].tolist()}")
    table = table.set_index("model")[COLUMNS]
    table["parameters"] = table["parameters"].astype(int)
    for column in ("val accuracy", "test accuracy"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    return table


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table with readable numbers (accuracy in %, rounded times and sizes), for printing.

    >>> table = comparison_table([{"model": "a", "val accuracy": 0.9, "train time (s)": 12.04, "epochs": 3,
    ...                            "parameters": 1000, "size (MB)": 0.123, "images/s": 512.3, "note": ""}])
    >>> format_table(table).iloc[0].tolist()
    ['90.0 %', '-', '12', '-', '3', '1,000', '0.12', '512', '']
    """
    out = pd.DataFrame(index=table.index)
    for column in ("val accuracy", "test accuracy"):
        out[column] = ["-" if pd.isna(v) else f"{100 * v:.1f} %" for v in table[column]]
    for column in ("train time (s)", "train CPU (s)"):
        out[column] = ["-" if pd.isna(v) else f"{v:.0f}" for v in table[column]]
    out["epochs"] = ["-" if pd.isna(v) else f"{int(v)}" for v in table["epochs"]]
    out["parameters"] = [f"{int(v):,}" for v in table["parameters"]]
    out["size (MB)"] = [f"{v:.2f}" for v in table["size (MB)"]]
    out["images/s"] = [f"{v:.0f}" for v in table["images/s"]]
    out["note"] = table["note"]
    return out


def plot_comparison(table: pd.DataFrame, title: str = "Model comparison (same data, same machine)"):
    """Four bar charts: accuracy, training time, size and speed; models without accuracy are starred.

    >>> table = comparison_table([{"model": m, "val accuracy": a, "test accuracy": a, "train time (s)": 10.0,
    ...                            "epochs": 1, "parameters": 10, "size (MB)": 0.1, "images/s": s, "note": ""}
    ...                           for m, a, s in [("a", 0.9, 100.0), ("b", 0.8, 300.0)]])
    >>> [ax.get_title() for ax in plot_comparison(table).axes]
    ['test accuracy (%)', 'training time (s)', 'size on disk (MB)', 'inference (images/s, batch 32)']
    """
    import matplotlib.pyplot as plt

    accuracy = "test accuracy" if table["test accuracy"].notna().any() else "val accuracy"
    panels = [(accuracy, accuracy.replace("val", "validation") + " (%)", 100.0),
              ("train time (s)", "training time (s)", 1.0),
              ("size (MB)", "size on disk (MB)", 1.0), ("images/s", "inference (images/s, batch 32)", 1.0)]
    random = table["val accuracy"].isna().to_numpy()
    names = [f"{name} *" if r else str(name) for name, r in zip(table.index, random)]
    colours = plt.get_cmap("tab10")(np.arange(len(names)) % 10)
    fig, axes = plt.subplots(2, 2, figsize=(11, 2.2 + 0.45 * len(names) * 2))
    for ax, (column, label, scale) in zip(axes.ravel(), panels):
        values = pd.to_numeric(table[column], errors="coerce").fillna(0).to_numpy(float) * scale
        y = np.arange(len(names))[::-1]
        ax.barh(y, values, color=colours)
        ax.set_yticks(y, names, fontsize=8.5)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:.2f}" if v < 10 else f" {v:.1f}" if v < 100 else f" {v:,.0f}", va="center",
                    fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_xlim(0, max(values.max(), 1e-9) * 1.25)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    if random.any():
        fig.text(0.01, 0.005, "* random stand-in weights (no pretrained download): no accuracy; size, time and "
                 "speed are real", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def choose(table: pd.DataFrame, tolerance: float = 0.01) -> str | None:
    """The fastest model within ``tolerance`` of the best validation accuracy, or ``None``.

    >>> table = comparison_table([{"model": m, "val accuracy": a, "train time (s)": 1.0, "epochs": 1,
    ...                            "parameters": 1, "size (MB)": 1.0, "images/s": s, "note": ""}
    ...                           for m, a, s in [("a", 0.99, 100.0), ("b", 0.985, 900.0), ("c", 0.9, 5000.0)]])
    >>> choose(table), choose(table, tolerance=0.001)
    ('b', 'a')
    """
    usable = table[table["val accuracy"].notna()]
    if usable.empty:
        return None
    close = usable[usable["val accuracy"] >= usable["val accuracy"].max() - tolerance]
    return close["images/s"].idxmax()


def recommend(table: pd.DataFrame, tolerance: float = 0.01) -> str:
    """A production recommendation from the table: :func:`choose` on validation, then report its test accuracy.

    >>> table = comparison_table([{"model": m, "val accuracy": a, "test accuracy": t, "train time (s)": 10.0,
    ...                            "epochs": 1, "parameters": p, "size (MB)": p / 1e6, "images/s": s, "note": ""}
    ...                           for m, a, t, p, s in [("big", 0.99, 0.97, 10**7, 100.0),
    ...                                                 ("small", 0.985, 0.99, 10**5, 900.0)]])
    >>> print(recommend(table))  # doctest: +NORMALIZE_WHITESPACE
    Recommended for production (chosen on validation accuracy): small (98.5 % validation accuracy, 900 images/s,
    0.10 MB). It is 0.5 points below the most accurate model on validation, big (99.0 %), but 9.0x faster and
    100x smaller on disk. Its test accuracy, on images no choice touched: 99.0 %.
    """
    pick_name = choose(table, tolerance)
    if pick_name is None:
        return "No recommendation: no model in the table has an accuracy (all have random stand-in weights)."
    usable = table[table["val accuracy"].notna()]
    best_name = usable["val accuracy"].idxmax()
    best, pick = usable.loc[best_name], usable.loc[pick_name]
    text = (f"Recommended for production (chosen on validation accuracy): {pick_name} "
            f"({100 * pick['val accuracy']:.1f} % validation accuracy, {pick['images/s']:.0f} images/s, "
            f"{pick['size (MB)']:.2f} MB).")
    if pick_name == best_name:
        text += (" It is both the most accurate model on validation and the fastest of those within "
                 f"{100 * tolerance:.0f} point(s) of it.")
    else:
        text += (f"\nIt is {100 * (best['val accuracy'] - pick['val accuracy']):.1f} points below the most "
                 f"accurate model on validation, {best_name} ({100 * best['val accuracy']:.1f} %), but "
                 f"{pick['images/s'] / best['images/s']:.1f}x faster and "
                 f"{best['size (MB)'] / pick['size (MB)']:.0f}x smaller on disk.")
    if "test accuracy" in table and pd.notna(pick.get("test accuracy")):
        text += f" Its test accuracy, on images no choice touched: {100 * pick['test accuracy']:.1f} %."
    return text


def predict_dataset(model, dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` over ``dataset`` once; return ``(images, y_true, probabilities)``.

    Labels and predictions come from the same pass, so they align even if the dataset shuffles.

    >>> import keras, tensorflow as tf
    >>> x = np.arange(6, dtype="float32").reshape(6, 1)
    >>> ds = tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 2).astype("int32"))).shuffle(6).batch(2)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda t: tf.concat([3 - t, t - 2], 1))])
    >>> images, y, p = predict_dataset(model, ds)
    >>> bool((p.argmax(1) == y).all())
    True
    """
    images, labels, probabilities = [], [], []
    for x, y in dataset:
        probabilities.append(np.asarray(model(x, training=False)))
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    if not labels:
        raise ValueError("the dataset is empty")
    return np.concatenate(images), np.concatenate(labels), np.concatenate(probabilities)


def epoch_timer():
    """A Keras callback recording each epoch's wall-clock seconds in ``.seconds`` (epoch 1 includes tracing).

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> timer = epoch_timer()
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros(4), epochs=3, verbose=0, callbacks=[timer])
    >>> len(timer.seconds), all(s > 0 for s in timer.seconds)
    (3, True)
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()
