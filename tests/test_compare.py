"""The comparison table measures what it reports: speed timed after a warm-up, size from the file."""

from __future__ import annotations

import time

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from defectlib import compare  # noqa: E402


def _tiny():
    return keras.Sequential([keras.Input((32, 32, 1)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(6, activation="softmax")], name="tiny")


def _heavy():
    layers = [keras.Input((32, 32, 1))]
    layers += [keras.layers.Conv2D(48, 3, padding="same", activation="relu") for _ in range(2)]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(6, activation="softmax")]
    return keras.Sequential(layers, name="heavy")


def _val_ds(n: int = 40):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 6, n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


class _FakeModel:
    """predict_on_batch sleeps ``first`` seconds on its first call, ``later`` seconds on the others."""

    def __init__(self, first: float, later: float, slow_call: int | None = None):
        self.first, self.later, self.slow_call, self.calls = first, later, slow_call, 0

    def predict_on_batch(self, batch):
        self.calls += 1
        time.sleep(self.first if self.calls == 1 else 0.3 if self.calls == self.slow_call else self.later)
        return np.zeros((len(batch), 6))


def test_more_compute_is_measured_as_slower():
    images = np.zeros((32, 32, 32, 1), "float32")
    tiny = compare.inference_speed(_tiny(), images, repeats=3)
    heavy = compare.inference_speed(_heavy(), images, repeats=3)
    assert tiny > 3 * heavy, f"tiny {tiny:.0f} images/s, heavy {heavy:.0f} images/s"


def test_warm_up_is_not_timed():
    model = _FakeModel(first=0.5, later=0.002)
    speed = compare.inference_speed(model, np.zeros((4, 2)), batch_size=32, warmup=1, repeats=3,
                                    batches_per_repeat=2)
    assert model.calls == 1 + 3 * 2
    assert speed > 32 / 0.1, "the slow first call (tracing) was included in the timing"


def test_speed_uses_the_median_run():
    # Call 4 is in the second of three timed runs: that run is slow, the median is not.
    model = _FakeModel(first=0.0, later=0.002, slow_call=4)
    speed = compare.inference_speed(model, np.zeros((4, 2)), batch_size=8, warmup=1, repeats=3,
                                    batches_per_repeat=2)
    assert speed > 8 * 2 / 0.1


def test_size_on_disk_is_the_saved_file(tmp_path):
    path = tmp_path / "heavy.keras"
    size = compare.size_on_disk_mb(_heavy(), path)
    assert size == path.stat().st_size / 1e6
    with pytest.raises(ValueError, match=".keras"):
        compare.size_on_disk_mb(_tiny(), tmp_path / "model.h5")


def test_table_of_measured_records(tmp_path):
    records = []
    for build in (_tiny, _heavy):
        model = build()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        record, history = compare.train_and_record(model.name, model, _val_ds(), _val_ds(), epochs=1,
                                                   workdir=tmp_path, warmup=1, repeats=3, test_ds=_val_ds(12))
        assert len(history.epoch) == 1
        records.append(record)
    table = compare.comparison_table(records)
    assert list(table.columns) == compare.COLUMNS
    assert table.index.tolist() == ["tiny", "heavy"]
    for name in ("tiny", "heavy"):
        assert table.loc[name, "size (MB)"] == (tmp_path / f"{name}.keras").stat().st_size / 1e6
        assert 0.0 <= table.loc[name, "val accuracy"] <= 1.0
        assert table.loc[name, "test accuracy"] in {k / 12 for k in range(13)}  # measured on the 12 test images
        assert table.loc[name, "train time (s)"] > 0 and table.loc[name, "train CPU (s)"] > 0
    assert table.loc["heavy", "parameters"] > table.loc["tiny", "parameters"]
    assert table.loc["tiny", "images/s"] != table.loc["heavy", "images/s"]
    assert table.loc["heavy", "size (MB)"] > table.loc["tiny", "size (MB)"]
    assert list(compare.format_table(table).columns) == compare.COLUMNS
    fig = compare.plot_comparison(table)
    assert len(fig.axes) == 4


def test_accuracy_is_aligned_with_labels():
    x = np.eye(6, dtype="float32")[[0, 1, 2, 3, 4, 5, 0, 1]]
    y = np.array([0, 1, 2, 3, 4, 5, 1, 1])
    model = keras.Sequential([keras.Input((6,)), keras.layers.Softmax()])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(8).batch(3)
    assert compare.dataset_accuracy(model, ds) == pytest.approx(7 / 8)


def test_random_weights_get_no_accuracy_but_everything_else_is_measured(tmp_path):
    record = compare.measure("stand_in", _tiny(), _val_ds(), test_ds=_val_ds(), real_weights=False,
                             train_seconds=2.0, epochs=1, note="fast mode", workdir=tmp_path, warmup=1, repeats=3)
    assert record["val accuracy"] is None and record["test accuracy"] is None
    assert record["note"].startswith(compare.RANDOM_WEIGHTS_NOTE) and "fast mode" in record["note"]
    assert record["size (MB)"] == (tmp_path / "stand_in.keras").stat().st_size / 1e6
    assert record["images/s"] > 0 and record["train time (s)"] == 2.0
    table = compare.comparison_table([record])
    assert table["val accuracy"].isna().all()
    assert compare.format_table(table).loc["stand_in", "val accuracy"] == "-"


def test_stopwatch_adds_up_both_phases_of_a_training():
    clock = compare.Stopwatch()
    with clock:
        time.sleep(0.05)
    first = clock.wall
    with clock:
        time.sleep(0.05)
    assert clock.laps == 2 and first >= 0.05 and clock.wall >= first + 0.05


def test_table_rejects_incomplete_or_duplicate_records():
    good = {"model": "a", "val accuracy": 0.5, "train time (s)": 1.0, "epochs": 1, "parameters": 1,
            "size (MB)": 0.1, "images/s": 10.0, "note": ""}
    with pytest.raises(ValueError, match="lack"):
        compare.comparison_table([{k: v for k, v in good.items() if k != "images/s"}])
    with pytest.raises(ValueError, match="same model name"):
        compare.comparison_table([good, good])


def _table(rows):
    return compare.comparison_table([
        {"model": m, "val accuracy": a, "test accuracy": t, "train time (s)": 1.0, "epochs": 1, "parameters": 10,
         "size (MB)": 1.0, "images/s": s, "note": ""} for m, a, t, s in rows])


def test_recommendation_ignores_models_without_accuracy():
    table = _table([("pretrained_random", None, None, 5000.0), ("cnn", 0.95, 0.94, 500.0), ("vit", 0.90, 0.9, 800.0)])
    text = compare.recommend(table)
    assert text.startswith("Recommended for production (chosen on validation accuracy): cnn")
    assert "pretrained_random" not in text and "94.0 %" in text


def test_recommendation_chooses_on_validation_and_reports_test():
    # b is better on test, but the choice must not look at test: a wins on validation.
    table = _table([("a", 0.99, 0.90, 100.0), ("b", 0.95, 0.99, 100.0)])
    text = compare.recommend(table)
    assert text.startswith("Recommended for production (chosen on validation accuracy): a")
    assert text.endswith("Its test accuracy, on images no choice touched: 90.0 %.")
