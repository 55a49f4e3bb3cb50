"""Throughput and mean Dice of the Severstal two-stage pipeline on this machine's CPU, with two gates.

On synthetic images of the real size (1600x256, ``make_synthetic_severstal``), it first
times the training pipeline's reading of the images (``classifier_dataset``), shrunk by
the JPEG decoder (``decode_image_at``) or decoded in full and resized. Then, after
a short training of the models, it compares on the test split: every image segmented
(no gate); the seed's gate (ResNet50 and a small head); and a cheap gate (``small_gate``:
a small CNN trained from scratch). Each gate's threshold is the highest with a
validation recall of defective images >= 0.99; the segmentation's minimum area per
class is chosen on the validation images (``choose_min_area``). It prints images per
second of each path, their ratio to segmenting everything, and the competition's mean
Dice of each (plus the empty submission and an oracle gate), then the goal line of
issue 17 (goal 4): the cheap pipeline's mean Dice clearly above the empty submission
(by 0.01 or more) and within 0.01 of the oracle gate, at least 1.5 times the speed of
segmenting everything, with a validation recall >= 0.99. Then the per-image cost of
the three models at the lesson's full-mode size (128x800). Last, the real path: the
same models (trained on synthetic images only) predict the 20 real images of
``<shared data>/severstal-sample`` (if present), scored against their real masks.

The ResNet50 base gets ImageNet weights when they can be downloaded; otherwise random
weights, and the script says so.

In prediction, images are read and classified ``--read-batch`` (32) at a time and the
ResUNet takes full batches of ``--batch`` (8); ``--read-batch 8`` reads as the segmenter
batches. Each path is timed ``--repeats`` times in turn and the run of median time is reported.
The seeds are fixed, but the ResUNet's training is not bit-reproducible on a CPU (its
weights differ in the last digits after one epoch from run to run, even with
``tf.config.experimental.enable_op_determinism``), so its Dice and its masks vary a
little between runs of this script.

Run: ``python benchmarks/severstal_pipeline.py`` (about 8 minutes on 2 quiet CPU cores);
``--help`` for the sizes.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import argument_parser, machine_load, shared_data, timed  # noqa: E402

FULL_SIZE = (128, 800)  # the lesson's full-mode input size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--images", type=int, default=240, help="synthetic images: half train, a quarter each val/test")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 400),
                        help="input size of the models (H W, multiples of 16)")
    parser.add_argument("--base-filters", type=int, default=8, help="filters of the ResUNet's first level")
    parser.add_argument("--cls-epochs", type=int, default=3, help="epochs of the ResNet50 gate's head")
    parser.add_argument("--gate-epochs", type=int, default=15, help="epochs of the small gate")
    parser.add_argument("--seg-epochs", type=int, default=30, help="epochs of the ResUNet")
    parser.add_argument("--batch", type=int, default=8, help="batch size of the gates and of prediction")
    parser.add_argument("--read-batch", type=int, default=32,
                        help="images read and classified per call in prediction (the ResUNet takes --batch)")
    parser.add_argument("--seg-batch", type=int, default=8, help="batch size of the ResUNet's training")
    parser.add_argument("--seg-lr", type=float, default=3e-3, help="learning rate of the ResUNet (short training)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each path on the test split (median)")
    return parser.parse_args(argv)


@dataclass
class Data:
    """The synthetic stand-in, its split, and its training and validation images decoded at the models' size."""

    images_dir: Path
    annotations: object  # train.csv, long format
    table: object  # one row per image, with its label (1: defective)
    train: object
    val: object
    test: object
    x_cls: object = None  # training images, masks and labels; the gates learn from all of them,
    masks: object = None  # the ResUNet from the defective ones
    y_cls: object = None
    x_cls_val: object = None  # the same for validation
    masks_val: object = None
    y_cls_val: object = None


def build_classifier(size):
    from defectlib.segmentation import defect_classifier

    try:
        return defect_classifier((*size, 3), weights="imagenet"), "ImageNet (frozen) + trained head"
    except Exception as error:  # noqa: BLE001 - no internet: say so and go on with random weights
        reason = f"{type(error).__name__}: {str(error)[:80]}"
        return defect_classifier((*size, 3), weights=None), f"RANDOM (no ImageNet download: {reason}) + trained head"


def per_image_seconds(model, size, n: int = 8, batch: int = 4) -> float:
    import numpy as np

    from defectlib.pipeline import warm_up

    warm_up(model, size, (batch,))
    x = np.random.default_rng(0).uniform(0, 255, (n, *size, 3)).astype(np.float32)
    start = time.perf_counter()
    for i in range(0, n, batch):
        model.predict_on_batch(x[i:i + batch])
    return (time.perf_counter() - start) / n


def arrays(dataset):
    """All (images, targets) of a dataset as two NumPy arrays."""
    import numpy as np

    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def defective(table) -> list[str]:
    return table.loc[table["label"] == 1, "ImageId"].tolist()


def make_data(n_images: int, size: tuple[int, int]) -> Data:
    """Synthetic Severstal images of the real size, split into halves and quarters."""
    from defectlib.severstal import defect_table, read_train_csv, split_table
    from defectlib.synthetic import make_synthetic_severstal

    work = Path(tempfile.mkdtemp(prefix="severstal-bench-"))
    seconds, root = timed(make_synthetic_severstal, work / "synthetic", n_images=n_images, seed=7)
    images_dir = root / "train_images"
    annotations = read_train_csv(root / "train.csv")
    table = defect_table(images_dir, annotations)
    train, val, test = split_table(table, fractions=(0.5, 0.25, 0.25), seed=0)
    print(f"SYNTHETIC data: {len(table)} images of 1600x256 ({table['label'].sum()} defective), made in "
          f"{seconds:.0f} s; split {len(train)}/{len(val)}/{len(test)}; models at {size[0]}x{size[1]}")
    return Data(images_dir, annotations, table, train, val, test)


def time_reading(data: Data, size: tuple[int, int]) -> None:
    """The training pipeline's cost per image: the JPEG decoder's shrink versus decode + resize."""
    from defectlib.rle import SEVERSTAL_SHAPE
    from defectlib.severstal import classifier_dataset

    for shape in [FULL_SIZE, size]:
        reading = {}
        for how, source in [("decoded in full, resized", None), ("shrunk by the JPEG decoder", SEVERSTAL_SHAPE)]:
            ds = classifier_dataset(data.images_dir, data.table, shape, 16, source_size=source)
            for _ in ds:   # once to warm up, then timed
                pass
            reading[how] = timed(lambda: [None for _ in ds])[0] / len(data.table)
        print(f"reading at {shape[0]}x{shape[1]} (tf.data, both cores): "
              + ", ".join(f"{how} {1000 * t:.2f} ms" for how, t in reading.items())
              + f" per image: {reading['decoded in full, resized'] / reading['shrunk by the JPEG decoder']:.1f}x")


def decode(data: Data, size: tuple[int, int], batch: int) -> None:
    """Every training and validation image decoded once into memory (a few MB at this size), with its masks."""
    from defectlib.severstal import segmentation_dataset

    def images_and_masks(split):
        return arrays(segmentation_dataset(data.images_dir, data.annotations, split["ImageId"].tolist(), size, batch))

    data.x_cls, data.masks = images_and_masks(data.train)
    data.x_cls_val, data.masks_val = images_and_masks(data.val)
    data.y_cls, data.y_cls_val = data.train["label"].to_numpy("float32"), data.val["label"].to_numpy("float32")


def train_gates(args: argparse.Namespace, data: Data, size: tuple[int, int]) -> tuple[dict, dict]:
    """Stage 1: two gates (name -> (model, epochs, what)), each with the highest threshold that keeps validation
    recall >= 0.99 (name -> threshold)."""
    import keras

    from defectlib.pipeline import choose_threshold, threshold_summary
    from defectlib.segmentation import small_gate

    resnet, weights = build_classifier(size)
    gates = {"ResNet50 gate": (resnet, args.cls_epochs, f"ResNet50 weights {weights}"),
             "small gate": (small_gate((*size, 3)), args.gate_epochs, "small CNN from scratch")}
    thresholds = {}
    for name, (model, epochs, what) in gates.items():
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy")
        seconds, _ = timed(model.fit, data.x_cls, data.y_cls, batch_size=args.batch, shuffle=True, epochs=epochs,
                           verbose=0)
        s_val = model.predict(data.x_cls_val, batch_size=args.batch, verbose=0).ravel()
        thresholds[name] = choose_threshold(data.y_cls_val, s_val, 0.99)
        print(f"{name} ({what}, {model.count_params():,} weights): {epochs} epochs in {seconds:.0f} s; validation at "
              f"the threshold for recall >= 0.99: {threshold_summary(data.y_cls_val, s_val, thresholds[name])}")
    return gates, thresholds


def train_segmenter(args: argparse.Namespace, data: Data, size: tuple[int, int]):
    """Stage 2: the ResUNet on the defective training images, keeping its best epoch on validation."""
    import keras
    import numpy as np

    from defectlib.losses import dice_coefficient, focal_tversky_loss, tversky_index
    from defectlib.segmentation import resunet

    segmenter = resunet((*size, 3), base_filters=args.base_filters)
    segmenter.compile(optimizer=keras.optimizers.Adam(learning_rate=args.seg_lr), loss=focal_tversky_loss(),
                      metrics=[tversky_index, dice_coefficient])
    x_train, y_train = data.x_cls[data.y_cls == 1], data.masks[data.y_cls == 1]
    x_val, y_val_masks = data.x_cls_val[data.y_cls_val == 1], data.masks_val[data.y_cls_val == 1]
    # The weights of the epoch with the best validation loss are kept, as the lesson's EarlyStopping does.
    best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.seg_epochs, restore_best_weights=True)
    seconds, history = timed(segmenter.fit, x_train, y_train, batch_size=args.seg_batch, shuffle=True,
                             validation_data=(x_val, y_val_masks), epochs=args.seg_epochs, callbacks=[best], verbose=0)
    logs = history.history
    kept = int(np.argmin(logs["val_loss"]))
    print(f"ResUNet (base {args.base_filters} filters, {segmenter.count_params():,} weights): {args.seg_epochs} "
          f"epochs in {seconds:.0f} s; loss {logs['loss'][0]:.3f} -> {logs['loss'][-1]:.3f}; kept epoch {kept + 1} "
          f"(best validation loss), its validation Dice (defective images, {size[0]}x{size[1]}) "
          f"{logs['val_dice_coefficient'][kept]:.3f}")
    return segmenter


def choose_areas(segmenter, data: Data, size: tuple[int, int], batch: int) -> list[int]:
    """Minimum area per class, chosen on every validation image (clean ones included), scaled to 256x1600."""
    from defectlib.pipeline import choose_min_area
    from defectlib.rle import SEVERSTAL_SHAPE

    scale = SEVERSTAL_SHAPE[0] * SEVERSTAL_SHAPE[1] / (size[0] * size[1])    # full-size pixels per model pixel
    candidates = [round(a / scale) for a in (0, 500, 1000, 2000, 4000, 8000, 16000, 32000)]
    predicted = segmenter.predict(data.x_cls_val, batch_size=batch, verbose=0)
    min_area_small = choose_min_area(data.masks_val, predicted, candidates)
    min_area = [round(a * scale) for a in min_area_small]
    print(f"minimum area per class chosen on validation: {min_area_small} pixels at {size[0]}x{size[1]} "
          f"= {min_area} at 256x1600")
    return min_area


def time_paths(args: argparse.Namespace, data: Data, gates: dict, thresholds: dict, segmenter, options,
               size: tuple[int, int]) -> dict[str, list]:
    """Each path on the test split, ``--repeats`` times in turn after a warm-up: path -> runs, fastest first."""
    from defectlib.pipeline import predict_two_stage, warm_up

    ids = data.test["ImageId"].tolist()
    batch, small = args.batch, gates["small gate"][0]
    for model in [gates["ResNet50 gate"][0], small, segmenter]:
        warm_up(model, size, (args.read_batch, batch, 1))
    # Each path runs --repeats times, in turn, and the run of median time is reported (the outputs are identical).
    # The baseline in the same run: the no-gate and small-gate paths reading and classifying --batch per call.
    per_segmenter_batch = replace(options, read_batch_size=batch)
    repeated = {name: [] for name in ["every", *gates, "no gate, baseline", "small gate, baseline"]}
    for _ in range(args.repeats):
        run = functools.partial(predict_two_stage, ids, images_dir=data.images_dir)
        repeated["every"].append(run(None, segmenter, replace(options, gate=False)))
        for name in gates:
            repeated[name].append(run(gates[name][0], segmenter, replace(options, threshold=thresholds[name])))
        repeated["no gate, baseline"].append(run(None, segmenter, replace(per_segmenter_batch, gate=False)))
        repeated["small gate, baseline"].append(run(small, segmenter,
                                                    replace(per_segmenter_batch, threshold=thresholds["small gate"])))
    return {name: sorted(r, key=lambda run: run[1].seconds["total"]) for name, r in repeated.items()}


def print_test_table(args: argparse.Namespace, data: Data, by_time: dict, thresholds: dict) -> None:
    """Images per second, share sent on, test recall and mean Dice of each path; then the goal."""
    import numpy as np

    from defectlib.pipeline import threshold_summary
    from defectlib.submission import score_submission

    annotations, ids, median = data.annotations, data.test["ImageId"].tolist(), args.repeats // 2
    every, stats_all = by_time["every"][median]
    truly_defective = set(defective(data.test))
    y_test = np.array([i in truly_defective for i in ids], int)
    empty_score = score_submission(annotations, every.iloc[0:0], ids)
    oracle_score = score_submission(annotations, every[every["ImageId"].isin(truly_defective)], ids)
    print(f"\ntest split: {len(ids)} images of 1600x256, {len(truly_defective)} defective")
    print(f"median of {args.repeats} runs per path (images/s of all runs: "
          + ", ".join(f"{'every image segm.' if k == 'every' else k} {r[-1][1].images_per_second:.1f}-"
                      f"{r[0][1].images_per_second:.1f}" for k, r in by_time.items()) + ")")
    print(f"  {'path':22} {'images/s':>8} {'ratio':>6} {'sent':>5} {'test recall':>11} {'mean Dice':>9}")
    print(f"  {'every image segm.':22} {stats_all.images_per_second:8.2f} {1:6.2f} {stats_all.n_segmented:5d} "
          f"{'':>11} {score_submission(annotations, every, ids):9.4f}   ({stats_all})")
    results = {}
    for name in thresholds:
        gated, stats = by_time[name][median]
        ratio = stats.images_per_second / stats_all.images_per_second
        recall = threshold_summary(y_test, stats.scores, thresholds[name])["recall"]
        results[name] = (ratio, score_submission(annotations, gated, ids))
        print(f"  {name:22} {stats.images_per_second:8.2f} {ratio:6.2f} {stats.n_segmented:5d} {recall:11.3f} "
              f"{results[name][1]:9.4f}   ({stats})")
    base_all, base_gate = (by_time[name][median][1] for name in ("no gate, baseline", "small gate, baseline"))
    print(f"  (baseline, reading and classifying {args.batch} per call instead of {args.read_batch}: every image "
          f"{base_all.images_per_second:.2f}, small gate {base_gate.images_per_second:.2f} images/s, ratio "
          f"{base_gate.images_per_second / base_all.images_per_second:.2f})")
    print(f"  {'empty submission':22} {'':>8} {'':>6} {0:5d} {'':>11} {empty_score:9.4f}")
    print(f"  {'oracle gate':22} {'':>8} {'':>6} {len(truly_defective):5d} {'':>11} {oracle_score:9.4f}"
          "   (true labels decide)")
    ratio, dice = results["small gate"]
    met = dice >= empty_score + 0.01 and dice >= oracle_score - 0.01 and ratio >= 1.5
    print(f"goal (small gate: mean Dice >= empty + 0.01 and >= oracle - 0.01; >= 1.5x the speed of segmenting "
          f"everything; validation recall >= 0.99 by its threshold): {'met' if met else 'NOT met'} "
          f"(Dice {dice:.4f} vs empty {empty_score:.4f} and oracle {oracle_score:.4f}; {ratio:.2f}x)")


def print_model_costs(gates: dict) -> None:
    """Per-image model cost at the lesson's full-mode size (random weights: speed does not depend on them)."""
    from defectlib.segmentation import resunet, small_gate

    costs = {"ResNet50 gate": per_image_seconds(build_classifier(FULL_SIZE)[0], FULL_SIZE),
             "small gate": per_image_seconds(small_gate((*FULL_SIZE, 3)), FULL_SIZE),
             "ResUNet (base 16)": per_image_seconds(resunet((*FULL_SIZE, 3), base_filters=16), FULL_SIZE)}
    print(f"\nfull-mode size ({FULL_SIZE[0]}x{FULL_SIZE[1]}), seconds per image: "
          + ", ".join(f"{name} {t:.4f}" for name, t in costs.items()))
    for name in gates:
        print(f"  {name}: saves model time when the share sent is below "
              f"{max(0.0, 1 - costs[name] / costs['ResUNet (base 16)']):.2f}")


def score_real_sample(gates: dict, thresholds: dict, segmenter, options) -> None:
    """The real sample: models trained on SYNTHETIC images, scored against real masks."""
    from defectlib.images import list_images
    from defectlib.pipeline import predict_two_stage, threshold_summary
    from defectlib.severstal import defect_table, read_train_csv
    from defectlib.submission import score_submission

    sample = shared_data() / "severstal-sample"
    if not (sample / "train.csv").is_file():
        print(f"\nreal sample: {sample} not present, skipped")
        return
    real_dir, truth = sample / "train_images", read_train_csv(sample / "train.csv")
    real_ids = list_images(real_dir)
    labels = defect_table(real_dir, truth).set_index("ImageId").loc[real_ids, "label"].to_numpy()
    real_every, _ = predict_two_stage(real_ids, None, segmenter, replace(options, gate=False), images_dir=real_dir)
    tables = {"every image segm.": real_every}
    print(f"\nreal sample ({sample}): {len(real_ids)} real 1600x256 images, {int(labels.sum())} defective, "
          f"{len(truth)} real masks; models trained on the SYNTHETIC images above")
    for name in gates:
        tables[name], real_stats = predict_two_stage(real_ids, gates[name][0], segmenter,
                                                     replace(options, threshold=thresholds[name]), images_dir=real_dir)
        print(f"  {name} on real images (threshold from synthetic validation): "
              f"{threshold_summary(labels, real_stats.scores, thresholds[name])}")
    tables["empty submission"] = real_every.iloc[0:0]
    tables["oracle gate"] = real_every[real_every["ImageId"].isin(set(truth["ImageId"]))]
    for name, submission in tables.items():
        per_class = score_submission(truth, submission, real_ids, per_class=True)
        print(f"  {name:19}: mean Dice {per_class.mean():.4f}  (per class 1-4: "
              f"{', '.join(f'{d:.3f}' for d in per_class)}; {int((submission['EncodedPixels'] != '').sum())} "
              "masks)")


def main() -> None:
    args = parse_args()

    import keras

    from defectlib.pipeline import TwoStageSettings

    print(f"machine: {machine_load()}")
    keras.utils.set_random_seed(0)
    size = tuple(args.size)
    data = make_data(args.images, size)
    time_reading(data, size)
    decode(data, size, args.batch)
    gates, thresholds = train_gates(args, data, size)
    segmenter = train_segmenter(args, data, size)
    min_area = choose_areas(segmenter, data, size, args.batch)
    options = TwoStageSettings(batch_size=args.batch, read_batch_size=args.read_batch, min_area=min_area,
                               min_component=30)
    by_time = time_paths(args, data, gates, thresholds, segmenter, options, size)
    print_test_table(args, data, by_time, thresholds)
    print_model_costs(gates)
    score_real_sample(gates, thresholds, segmenter, options)
    print(f"machine at the end: {machine_load()}")


if __name__ == "__main__":
    main()
