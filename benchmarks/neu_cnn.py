"""Lesson 1's two CNNs on the real NEU data, trained in the same run: the seed recipe and the refined model.

Seed recipe: ``defectlib.cnn.lenet`` as the seed notebook wrote it (200x200 images
upsampled to 255x255 RGB, three conv/pool blocks, Flatten + Dense), Adam at a constant
1e-3, trained for only a few epochs: enough to measure its time per epoch and see where
it is heading (the seed trained 50). Refined: ``defectlib.cnn.refined_cnn`` (native
200x200 grayscale, stride-4 stem, batch normalisation, global average pooling), Adam
with cosine decay after a linear warmup, trained to the end, as in the lesson. Both read
the same in-memory pipeline (``neu_datasets``), so the times compare the models only.

Run: ``python benchmarks/neu_cnn.py``. Data: ``$DEFECTLIB_NEU_DIR``, else
``../shared/data/NEU-DET`` beside the repository; without it the script says so and
exits 0. Seeded (``DEFECTLIB_SEED``, default 42). Other work on the machine slows the
timings: the load average is printed before and after.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # always the whole data set and the full recipe

from _common import machine_load, require, shared_data  # noqa: E402

SEED_EPOCHS = int(os.environ.get("NEU_CNN_SEED_EPOCHS", "3"))
EPOCHS = 30
BATCH_SIZE = 32
PEAK_LEARNING_RATE = 3e-3
WARMUP_FRACTION = 0.1


def train(model, train_ds, val_ds, epochs: int, learning_rate) -> dict:
    """Compile, fit (timing every epoch), evaluate on the whole validation set, save as .keras."""
    import keras
    import numpy as np

    from defectlib.evaluate import predict_dataset
    from defectlib.timing import epoch_timer

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = epoch_timer()
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=2, callbacks=[timer])
    wall = time.perf_counter() - start
    _, y_true, probabilities = predict_dataset(model, val_ds)
    wrong = int((probabilities.argmax(axis=1) != y_true).sum())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{model.name}.keras"
        model.save(path)
        megabytes = path.stat().st_size / 1e6
    return {"epochs": epochs, "wall": wall, "epoch": float(np.median(timer.seconds)), "first": timer.seconds[0],
            "accuracy": 1 - wrong / len(y_true), "wrong": wrong, "n": len(y_true),
            "best": max(history.history["val_accuracy"]), "params": model.count_params(), "mb": megabytes}


def main() -> None:
    root = require(Path(os.environ.get("DEFECTLIB_NEU_DIR") or shared_data() / "NEU-DET"))

    import keras

    from defectlib.config import seed_everything, settings
    from defectlib.cnn import lenet, refined_cnn
    from defectlib.neu import find_neu, neu_datasets

    print("start:", machine_load())
    seed = settings().seed
    data = find_neu(root)

    seed_everything(seed)
    train_rgb, val_rgb = neu_datasets(data, color="rgb", batch_size=BATCH_SIZE, seed=seed)
    print(f"\n== seed recipe: LeNet, 255x255 RGB, Adam 1e-3, {SEED_EPOCHS} epochs")
    classic = train(lenet(), train_rgb, val_rgb, SEED_EPOCHS, 1e-3)
    del train_rgb, val_rgb

    seed_everything(seed)
    train_gray, val_gray = neu_datasets(data, batch_size=BATCH_SIZE, seed=seed)
    steps = EPOCHS * len(train_gray)
    warmup = int(WARMUP_FRACTION * steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=PEAK_LEARNING_RATE / 10, decay_steps=steps - warmup,
        warmup_target=PEAK_LEARNING_RATE, warmup_steps=warmup)
    print(f"\n== refined CNN: 200x200 grayscale, cosine schedule with warmup, {EPOCHS} epochs")
    refined = train(refined_cnn(), train_gray, val_gray, EPOCHS, schedule)

    print("\nend:", machine_load())
    print(f"\n{'model':<14}{'epochs':>7}{'val acc':>9}{'wrong':>9}{'best':>8}{'train s':>9}"
          f"{'s/epoch':>9}{'epoch 1 s':>10}{'params':>12}{'.keras MB':>11}")
    for name, r in (("seed LeNet", classic), ("refined CNN", refined)):
        print(f"{name:<14}{r['epochs']:>7}{r['accuracy']:>9.2%}{r['wrong']:>5}/{r['n']:<3}{r['best']:>8.2%}"
              f"{r['wall']:>9.0f}{r['epoch']:>9.1f}{r['first']:>10.1f}{r['params']:>12,}{r['mb']:>11.1f}")
    print(f"time per epoch, seed / refined: {classic['epoch'] / refined['epoch']:.1f}x")
    print(f"parameters, seed / refined: {classic['params'] / refined['params']:.0f}x")
    print("s/epoch is the median epoch (the first also traces the graph); .keras includes the optimizer state.")
    goal = refined["wrong"] <= 3 and refined["wall"] <= 300
    print(f"goal (refined: at most 3 of 360 wrong, at most 300 s of training): {'met' if goal else 'NOT met'}"
          f" ({refined['wrong']} wrong, {refined['wall']:.0f} s)")


if __name__ == "__main__":
    main()
