"""Lesson 1's CNNs on the real NEU data: the seed's LeNet, the ablation, and the refined CNN over 5 seeds.

Evaluation protocol (``defectlib.neu.with_test_split``): Kaggle's 360 validation images are
the test set; a stratified validation split (288) is carved from the 1,440 training images,
which leaves 1,152 to train on. Choices are made on validation, final numbers on test.

``--part seeds`` (issue 17, goal 1): the exact seed model (``defectlib.cnn.lenet``, 255x255
RGB, categorical cross-entropy on integer labels, Adam 1e-3 with the seed's schedule) trained
for a few epochs, only to measure its time per epoch; then lesson 1's refined CNN
(``defectlib.cnn.refined_cnn``, Adam with cosine decay after a warmup to 3e-3) trained with 5
seeds, each evaluated once on the test set. Prints every run (its test accuracy, and its test
accuracy when the probabilities are averaged over the image and its three flips), mean +- sd,
the worst, seconds of training per run, and time per epoch as a ratio to the seed model's.
Goal: mean >= 99.5 %, worst >= 99.2 %, every run <= 120 s of training.

The default recipe is the one that meets the goal on a 2-core CPU: the images average-pooled
to 100x100 inside the model (``--downsample 2``; the same layers and weights after it), a final
fit on train + validation (1,440 images), as one does once every choice is made, and 40 epochs:
what fits in 120 s at about 2.2 s per epoch with TensorFlow's oneDNN kernels, which
``_common`` asks for (``TF_ENABLE_ONEDNN_OPTS=0`` measures without them). The notebook's own
recipe (native 200x200, 30 epochs, 1,152 training images, validation accuracy printed too) is
``--downsample 1 --epochs 30 --no-final-fit``. ``--label-smoothing 0.1`` trains on smoothed
one-hot labels. The test images that were wrong are listed, with the number of runs that got
each one wrong.

``--part ablation`` (issue 12, point 13): from the seed model, one change at a time
(``defectlib.ablation.ABLATION_STEPS``), each trained ``--ablation-epochs`` epochs and evaluated on
the validation split; accuracy and time per epoch per row.

Run: ``python benchmarks/neu_cnn.py [--part seeds|ablation|all] [--epochs N] [--downsample 1|2]
[--final-fit|--no-final-fit] [--label-smoothing S] [--fast]``;
``--part ablation --rows "batch norm"`` runs only the rows whose label contains that text.
``--fast`` is a smoke test (20 images per class, 1 epoch, 2 seeds): its numbers mean nothing.
Data: ``$DEFECTLIB_NEU_DIR``, else ``../shared/data/NEU-DET``; without it the script says so and
exits 0. Other work on the machine slows the timings: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # the whole data set unless --fast
# The pipelines shuffle themselves; Keras warns at every fit that its own shuffle=True is ignored.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")

from _common import (argument_parser, flip_accuracy, machine_load, neu_root,  # noqa: E402
                     with_validation_in_train)

BATCH_SIZE = 32
PEAK_LEARNING_RATE = 3e-3


def fit(model, train_ds, epochs: int, learning_rate, callbacks=(), label_smoothing: float = 0.0) -> dict:
    """Compile as the lesson does, fit without validation (so only training is timed); seconds per epoch.

    With ``label_smoothing`` the labels become one-hot, smoothed by that amount (Keras's
    sparse cross-entropy has no smoothing).
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from defectlib.compare import epoch_timer

    # Sparse categorical cross-entropy on integer labels is the seed's categorical cross-entropy on one-hot labels.
    loss = "sparse_categorical_crossentropy"
    if label_smoothing:
        classes = model.output_shape[-1]
        train_ds = train_ds.map(lambda x, y: (x, tf.one_hot(y, classes)))
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=["accuracy"])
    timer = epoch_timer()
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=0, callbacks=[timer, *callbacks])
    return {"train_s": time.perf_counter() - start, "epoch_s": float(np.median(timer.seconds)), "epochs": epochs,
            "epoch_range": (min(timer.seconds), max(timer.seconds))}


def accuracy(model, dataset) -> tuple[float, int, int]:
    from defectlib.compare import predict_dataset

    _, y_true, probabilities = predict_dataset(model, dataset)
    wrong = int((probabilities.argmax(axis=1) != y_true).sum())
    return 1 - wrong / len(y_true), wrong, len(y_true)


def wrong_images(model, dataset, files) -> list[str]:
    """'file (true -> predicted)' for each error; ``dataset`` yields the images of ``files`` in order."""
    from defectlib.compare import predict_dataset
    from defectlib.neu import CLASS_NAMES

    _, y_true, probabilities = predict_dataset(model, dataset)
    if list(y_true) != files["label"].tolist():
        raise RuntimeError("the test pipeline does not yield the test files in order")
    predicted = probabilities.argmax(axis=1)
    return [f"{Path(path).name} ({CLASS_NAMES[t]} -> {CLASS_NAMES[p]})"
            for path, t, p in zip(files["path"], y_true, predicted) if t != p]


def seed_model_epoch(data, epochs: int, seed: int) -> dict:
    import keras

    from defectlib.cnn import lenet, seed_schedule
    from defectlib.config import seed_everything
    from defectlib.neu import neu_datasets

    seed_everything(seed)
    (train_rgb,) = neu_datasets(data, image_size=(255, 255), color="rgb", batch_size=BATCH_SIZE, seed=seed,
                                splits=("train",))
    model = lenet()
    assert model.count_params() == 15_839_174
    r = fit(model, train_rgb, epochs, 1e-3, [keras.callbacks.LearningRateScheduler(seed_schedule)])
    print(f"seed LeNet (255x255 RGB, 15,839,174 parameters): {epochs} epochs, {r['epoch_s']:.1f} s per epoch "
          f"(median), {r['train_s']:.0f} s", flush=True)
    return r


def refined_model(downsample: int):
    """Lesson 1's refined CNN; with ``downsample`` > 1 it sees the 200x200 images average-pooled by that factor."""
    import keras

    from defectlib.cnn import refined_cnn

    if downsample == 1:
        return refined_cnn()
    side = 200 // downsample
    return keras.Sequential([keras.Input((200, 200, 1), name="image"),
                             keras.layers.AveragePooling2D(downsample, name="downsample"),
                             refined_cnn(input_shape=(side, side, 1))], name=f"refined_cnn_at_{side}")


def part_seeds(data, epochs: int, seeds: list[int], seed_epochs: int, downsample: int = 1,
               final_fit: bool = False, label_smoothing: float = 0.0) -> None:
    import collections

    from defectlib.cnn import cosine_with_warmup
    from defectlib.config import seed_everything
    from defectlib.neu import neu_datasets

    recipe = (f"refined CNN{f' on images average-pooled {downsample}x' if downsample > 1 else ''}, {epochs} epochs, "
              f"trained on {'train + validation' if final_fit else 'train'}"
              f"{f', label smoothing {label_smoothing:g}' if label_smoothing else ''}")
    print(f"\n== seeds: {recipe}, {len(seeds)} seeds, final numbers on the test split")
    fit_data = with_validation_in_train(data) if final_fit else data  # final fit: the choices are made
    reference = seed_model_epoch(data, seed_epochs, seeds[0])
    runs, errors = [], collections.Counter()
    test_files = data.split("test")
    # After a final fit the validation images are training images: nothing to score there.
    val = None if final_fit else neu_datasets(data, batch_size=BATCH_SIZE, splits=("validation",))[0]
    for seed in seeds:
        seed_everything(seed)
        train, test = neu_datasets(fit_data, batch_size=BATCH_SIZE, seed=seed, splits=("train", "test"))
        model = refined_model(downsample)
        assert model.count_params() == 98_758
        r = fit(model, train, epochs, cosine_with_warmup(PEAK_LEARNING_RATE, epochs, len(train)),
                label_smoothing=label_smoothing)
        wrong = wrong_images(model, test, test_files)
        errors.update(wrong)
        r["wrong"], r["n"] = len(wrong), len(test_files)
        r["acc"] = 1 - r["wrong"] / r["n"]
        r["flips"] = flip_accuracy(model, test)
        val_text = "" if val is None else f"validation {accuracy(model, val)[0]:.2%}, "
        runs.append(r)
        print(f"seed {seed}: {val_text}test accuracy {r['acc']:.2%} ({r['wrong']}/{r['n']} wrong), "
              f"with flips at test time {r['flips']:.2%}, training {r['train_s']:.0f} s, "
              f"{r['epoch_s']:.2f} s per epoch, seed model / refined time per epoch "
              f"{reference['epoch_s'] / r['epoch_s']:.1f}x  [{machine_load()}]", flush=True)
    accs, flips = [r["acc"] for r in runs], [r["flips"] for r in runs]
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    worst, slowest = min(accs), max(r["train_s"] for r in runs)
    print(f"test accuracy: mean {statistics.mean(accs):.2%} +- {sd:.2%} (sd), worst {worst:.2%}; with flips at "
          f"test time: mean {statistics.mean(flips):.2%}, worst {min(flips):.2%}; "
          f"training per run: mean {statistics.mean(r['train_s'] for r in runs):.0f} s, slowest {slowest:.0f} s")
    print("test images wrong, with the number of runs: " +
          ("; ".join(f"{name} x{count}" for name, count in errors.most_common()) or "none"))
    ratio = reference["epoch_s"] / statistics.median(r["epoch_s"] for r in runs)
    print(f"time per epoch, seed LeNet / refined CNN (same run): {ratio:.1f}x")
    goal = statistics.mean(accs) >= 0.995 and worst >= 0.992 and slowest <= 120
    print(f"goal (mean >= 99.5 %, worst >= 99.2 %, every run <= 120 s of training): {'met' if goal else 'NOT met'}")


def part_ablation(data, epochs: int, seed: int, only: str | None = None) -> None:
    import keras

    from defectlib.ablation import ABLATION_STEPS, ablation_cnn
    from defectlib.cnn import cosine_with_warmup, seed_schedule
    from defectlib.config import seed_everything
    from defectlib.neu import neu_datasets

    print(f"\n== ablation: one change at a time, {epochs} epochs each, accuracy on the validation split")
    pipelines = {}
    rows = []
    for i, (label, changes) in enumerate(ABLATION_STEPS):
        if only and only not in label:
            continue
        color = "grayscale" if changes.get("native") else "rgb"
        if color not in pipelines:
            pipelines[color] = neu_datasets(data, color=color, batch_size=BATCH_SIZE, seed=seed)
        train, val = pipelines[color]
        seed_everything(seed)
        model = ablation_cnn(**changes)
        if i == len(ABLATION_STEPS) - 1:  # the last step changes only the schedule
            r = fit(model, train, epochs, cosine_with_warmup(PEAK_LEARNING_RATE, epochs, len(train)))
        else:
            r = fit(model, train, epochs, 1e-3, [keras.callbacks.LearningRateScheduler(seed_schedule)])
        r["acc"], r["wrong"], r["n"] = accuracy(model, val)
        rows.append((label, model.count_params(), r))
        print(f"{label:<28}{model.count_params():>12,}  val {r['acc']:.2%} ({r['wrong']}/{r['n']} wrong)  "
              f"{r['epoch_s']:.2f} s per epoch (median; epochs from {r['epoch_range'][0]:.1f} to "
              f"{r['epoch_range'][1]:.1f} s)  [{machine_load()}]", flush=True)
    base = rows[0][2]["epoch_s"]
    print(f"\n{'step':<28}{'parameters':>12}{'val acc':>9}{'s/epoch':>9}{'speed-up':>10}")
    for label, params, r in rows:
        print(f"{label:<28}{params:>12,}{r['acc']:>9.2%}{r['epoch_s']:>9.2f}{base / r['epoch_s']:>9.1f}x")


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--part", choices=("seeds", "ablation", "all"), default="all", help="which part to run")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the refined CNN per seed")
    parser.add_argument("--ablation-epochs", type=int, default=10, help="epochs of each ablation row")
    parser.add_argument("--seed-epochs", type=int, default=3, help="epochs of the seed model, for its time per epoch")
    parser.add_argument("--seeds", type=int, default=5,
                        help="seeds: how many runs of the refined CNN, seeds DEFECTLIB_SEED, DEFECTLIB_SEED + 1, ...")
    parser.add_argument("--downsample", type=int, default=2,
                        help="seeds: average-pool the images by this factor inside the model (2: 100x100, "
                             "1: the native 200x200 of the notebook)")
    parser.add_argument("--final-fit", action=argparse.BooleanOptionalAction, default=True,
                        help="seeds: train on train + validation (1,440 images), as after the choices are made; "
                             "--no-final-fit trains on the 1,152 training images and scores validation")
    parser.add_argument("--label-smoothing", type=float, default=0.0,
                        help="seeds: smooth the one-hot labels by this amount (0.1: 0.9 + 0.1 / 6 on the true class)")
    parser.add_argument("--rows", help="ablation: only the rows whose label contains this text (default: all; the "
                                       "speed-up is then relative to the first of them)")
    parser.add_argument("--fast", action="store_true", help="smoke test: 20 images per class, 1 epoch, 2 seeds")
    args = parser.parse_args()
    root = neu_root()

    from defectlib.config import settings
    from defectlib.neu import class_counts, find_neu, with_test_split

    if args.fast:
        args.epochs = args.ablation_epochs = args.seed_epochs = 1
        args.seeds = 2
    first = settings().seed
    data = with_test_split(find_neu(root, max_per_class=20 if args.fast else None))
    print("start:", machine_load())
    print("images per split:", class_counts(data).sum().to_dict(), "(--fast: numbers mean nothing)" if args.fast else "")
    if args.part in ("seeds", "all"):
        part_seeds(data, args.epochs, [first + i for i in range(args.seeds)], args.seed_epochs, args.downsample,
                   args.final_fit, args.label_smoothing)
    if args.part in ("ablation", "all"):
        part_ablation(data, args.ablation_epochs, first, args.rows)
    print("\nend:", machine_load())


if __name__ == "__main__":
    main()
