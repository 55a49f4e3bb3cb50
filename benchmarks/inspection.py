"""Lesson 5 on the real NEU data: where the lesson-1 CNN looks, how far to trust it, how fast it ships.

Trains the lesson-1 refined CNN (``defectlib.cnn.refined_cnn``, the lesson's recipe:
Adam, cosine decay after a linear warmup, 30 epochs) on the training split of the
course protocol (``with_test_split``: 1,152 train / 288 validation / 360 test), then on
the 360 test images:

- pointing game: share of images whose class activation map (for the true class) peaks
  inside an annotated box of that class, against a point at the centre and a random
  point (the boxes' share of the area); goal: well above both;
- calibration: expected calibration error (10 bins) before and after temperature
  scaling fitted on validation; goal after <= 2 %;
- export with ``defectlib.inspection.export_litert``, as lesson 5 does (float32, and 8-bit weights and
  activations quantised on 200 training images), run with the ``ai-edge-litert``
  interpreter: agreement with Keras (goal float32 >= 99.9 %), accuracy lost by the
  8-bit model (goal <= 0.5 points), file sizes (goal 8-bit <= 1/3 of the ``.keras``
  file), batch-1 latency and images per second against Keras ``predict`` (goal 8-bit
  >= 3x faster at batch 1), all in this one run.

Run: ``python benchmarks/inspection.py`` (``--epochs`` changes the 30 epochs; ``--epochs 1`` is a
smoke run whose figures mean nothing). Data: ``$DEFECTLIB_NEU_DIR``, else
``../shared/data/NEU-DET``; without it the script says so and exits 0. Seeded
(``DEFECTLIB_SEED``). Other work on the machine slows the timings: the load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"

from _common import argument_parser, machine_load, neu_root, timed  # noqa: E402

BATCH_SIZE = 32
PEAK_LEARNING_RATE = 3e-3
REPRESENTATIVE = 200
LATENCY_IMAGES = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the lesson-1 CNN")
    return parser.parse_args(argv)


def train(train_ds, val_ds, epochs: int):
    """Lesson 1's refined CNN with the lesson's recipe: Adam, cosine decay after a linear warmup."""
    import keras

    from defectlib.cnn import refined_cnn

    model = refined_cnn()
    steps = epochs * len(train_ds)
    schedule = keras.optimizers.schedules.CosineDecay(PEAK_LEARNING_RATE / 10, steps - int(0.1 * steps),
                                                      warmup_target=PEAK_LEARNING_RATE, warmup_steps=int(0.1 * steps))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    seconds, _ = timed(model.fit, train_ds, validation_data=val_ds, epochs=epochs, verbose=2)
    print(f"training: {seconds:.0f} s for {epochs} epochs")
    return model


def pointing_game(model, data, x_test, y_test) -> None:
    """Where it looks: CAM of the true class, pointing game."""
    import numpy as np

    from defectlib import inspection as ins
    from defectlib.interpret import class_activation_maps
    from defectlib.neu import read_boxes

    files = data.split("test")
    boxes = ins.boxes_by_image(files["path"], files["class_name"], read_boxes(data.root))
    maps = np.concatenate([class_activation_maps(model, x_test[i:i + 64], y_test[i:i + 64])
                           for i in range(0, len(x_test), 64)])
    game = ins.pointing_game(ins.map_peaks(maps, x_test.shape[1:3]), boxes, x_test.shape[1:3])
    print("\npointing game (test, CAM of the true class):")
    print(f"  lesson-1 CNN  {game['map'].mean():.1%}")
    print(f"  centre point  {game['centre'].mean():.1%}")
    print(f"  random point  {game['random'].mean():.1%}  (mean share of the image inside a box of the class)")
    per_class = game.assign(cls=files["class_name"].to_numpy()).groupby("cls")[["map", "centre", "random"]].mean()
    print(per_class.round(3).to_string())


def calibration(p_val, y_val, p_test, y_test) -> None:
    """How far to trust it: ECE before and after temperature scaling (fitted on validation)."""
    from defectlib import inspection as ins
    from defectlib.interpret import fit_temperature, softmax_with_temperature

    temperature = fit_temperature(p_val, y_val)
    before = ins.expected_calibration_error(p_test, y_test)
    after = ins.expected_calibration_error(softmax_with_temperature(p_test, temperature), y_test)
    print(f"\ncalibration (test, 10 bins): ECE {before:.2%} before, {after:.2%} after temperature scaling "
          f"(T = {temperature:.2f}, fitted on validation); goal after <= 2 %: {'met' if after <= 0.02 else 'NOT met'}")


def export(model, data) -> tuple[Path, Path, dict[str, int]]:
    """The ``.keras`` file, LiteRT float32 and 8-bit (calibrated on training images); their sizes in bytes."""
    import numpy as np
    import tensorflow as tf

    from defectlib import inspection as ins
    from defectlib.config import settings
    from defectlib.neu import neu_arrays

    folder = Path(tempfile.mkdtemp())
    keras_file, f32_file, q_file = folder / "model.keras", folder / "float32.tflite", folder / "int8.tflite"
    model.save(keras_file)
    ins.export_litert(model, f32_file)  # as the lesson exports
    x_train, _ = neu_arrays(data, "train")
    rng = np.random.default_rng(settings().seed)
    sample = x_train[rng.choice(len(x_train), min(REPRESENTATIVE, len(x_train)), replace=False)].astype("float32")

    def representative():
        for image in sample:
            yield [image[None]]

    ins.export_litert(model, q_file, optimizations=[tf.lite.Optimize.DEFAULT], representative_dataset=representative)
    return f32_file, q_file, {f.name: f.stat().st_size for f in (keras_file, f32_file, q_file)}


def compare_exports(f32_file: Path, q_file: Path, sizes: dict[str, int], x_test, y_test, p_test) -> None:
    """How to ship it: the LiteRT models' agreement with Keras, the 8-bit model's accuracy, the file sizes."""
    import numpy as np

    from defectlib import inspection as ins

    accuracy = (p_test.argmax(1) == y_test).mean()
    p_f32 = ins.litert_predict(f32_file, x_test)
    p_q = ins.litert_predict(q_file, x_test)
    agree = (p_f32.argmax(1) == p_test.argmax(1)).mean()
    q_accuracy = (p_q.argmax(1) == y_test).mean()
    print("\nexport (LiteRT, ai-edge-litert interpreter):")
    print(f"  float32 agrees with Keras on {agree:.2%} of test predictions "
          f"(max |dp| {np.abs(p_f32 - p_test).max():.1e}); goal >= 99.9 %: {'met' if agree >= 0.999 else 'NOT met'}")
    print(f"  8-bit accuracy {q_accuracy:.2%} vs Keras {accuracy:.2%}: {100 * (accuracy - q_accuracy):+.2f} points "
          f"lost (goal <= 0.5); agrees with Keras on {(p_q.argmax(1) == p_test.argmax(1)).mean():.2%}")
    for name, size in sizes.items():
        print(f"  {name:14s} {size / 1e3:8.1f} kB  ({size / sizes['model.keras']:.2f} of the .keras file)")


def latency(model, x_test, f32_file: Path, q_file: Path, sizes: dict[str, int]) -> None:
    """Batch-1 latency of Keras and of both LiteRT models, Keras batched for scale; the goals of the export."""
    from defectlib import inspection as ins

    one = x_test[:LATENCY_IMAGES]
    model.predict(one[:1], verbose=0)  # build the predict function once
    keras_batch1, _ = timed(lambda: [model.predict(one[i:i + 1], verbose=0) for i in range(len(one))])
    keras_batched, _ = timed(lambda: model.predict(x_test, batch_size=BATCH_SIZE, verbose=0))
    f32_batch1, _ = timed(lambda: ins.litert_predict(f32_file, one))
    q_batch1, _ = timed(lambda: ins.litert_predict(q_file, one))
    print(f"\nlatency at batch 1 ({len(one)} test images, one call each; {machine_load()}):")
    rows = [("Keras predict, batch 1", keras_batch1 / len(one)),
            (f"Keras predict, batch {BATCH_SIZE}", keras_batched / len(x_test)),
            ("LiteRT float32, batch 1", f32_batch1 / len(one)), ("LiteRT 8-bit, batch 1", q_batch1 / len(one))]
    for name, seconds in rows:
        print(f"  {name:26s} {1e3 * seconds:7.2f} ms/image  {1 / seconds:8.0f} images/s  "
              f"({rows[0][1] / seconds:5.1f}x Keras batch 1)")
    faster, smaller = keras_batch1 / q_batch1 >= 3, sizes["int8.tflite"] <= sizes["model.keras"] / 3
    print(f"  goal 8-bit >= 3x faster than Keras predict at batch 1: {'met' if faster else 'NOT met'}")
    print(f"  goal 8-bit <= 1/3 of the .keras size: {'met' if smaller else 'NOT met'}")


def main() -> None:
    args = parse_args()
    root = neu_root()

    from defectlib.compare import predict_dataset
    from defectlib.config import seed_everything, settings
    from defectlib.neu import find_neu, neu_datasets, with_test_split

    print(machine_load())
    seed_everything(settings().seed)
    data = with_test_split(find_neu(root))
    train_ds, val_ds, test_ds = neu_datasets(data, batch_size=BATCH_SIZE, splits=("train", "validation", "test"))
    model = train(train_ds, val_ds, args.epochs)

    x_test, y_test, p_test = predict_dataset(model, test_ds)
    _, y_val, p_val = predict_dataset(model, val_ds)
    print(f"\ntest accuracy (Keras): {(p_test.argmax(1) == y_test).mean():.2%} on {len(y_test)} images")
    pointing_game(model, data, x_test, y_test)
    calibration(p_val, y_val, p_test, y_test)
    f32_file, q_file, sizes = export(model, data)
    compare_exports(f32_file, q_file, sizes, x_test, y_test, p_test)
    latency(model, x_test, f32_file, q_file, sizes)
    print(f"\n{machine_load()}")


if __name__ == "__main__":
    main()
