"""Throughput and mean Dice of the Severstal two-stage pipeline on this machine's CPU.

On synthetic images of the real size (1600x256, ``make_synthetic_severstal``), after
a short training of both stages, it prints: images per second through the two-stage
pipeline (classifier gate, then ResUNet), the same with every image segmented, their
ratio, and the competition's mean Dice of each path (plus the empty submission and an
oracle gate). Then the per-image cost of both models at the lesson's full-mode sizes.
Last, the real path: the same models (trained on synthetic images only) predict the 20
real images of ``<shared data>/severstal-sample`` (if present), scored with the mean Dice
against their real masks, beside the empty submission and an oracle gate there: what
training on the stand-in buys on real steel.

The ResNet50 base gets ImageNet weights when they can be downloaded; otherwise random
weights, and the script says so (then the gate has little to work with).

Run: ``python benchmarks/severstal_pipeline.py`` (about 3 to 6 minutes on 2 CPU cores);
``--help`` for the sizes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import machine_load, shared_data, timed  # noqa: E402


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
    """All (images, masks) of a dataset as two NumPy arrays."""
    import numpy as np

    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def defective(table) -> list[str]:
    return table.loc[table["label"] == 1, "ImageId"].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96, help="synthetic images: half train, a quarter each val/test")
    parser.add_argument("--size", type=int, nargs=2, default=(32, 208),
                        help="input size of both models (H W, multiples of 16)")
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--cls-epochs", type=int, default=3)
    parser.add_argument("--seg-epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8, help="batch size of the classifier and of prediction")
    parser.add_argument("--seg-batch", type=int, default=4, help="batch size of the ResUNet's training")
    parser.add_argument("--seg-lr", type=float, default=3e-3, help="learning rate of the ResUNet (short training)")
    args = parser.parse_args()

    import keras

    from defectlib.losses import dice_coefficient, focal_tversky_loss, tversky_index
    from defectlib.segmentation import resunet
    from defectlib.pipeline import (choose_threshold, classifier_scores, predict_two_stage, score_submission,
                                    threshold_summary, warm_up)
    from defectlib.severstal import (classifier_dataset, defect_table, list_images, make_synthetic_severstal,
                                     read_train_csv, segmentation_dataset, split_table)

    print(f"machine: {machine_load()}")
    keras.utils.set_random_seed(0)
    size, batch = tuple(args.size), args.batch
    work = Path(tempfile.mkdtemp(prefix="severstal-bench-"))

    seconds, root = timed(make_synthetic_severstal, work / "synthetic", n_images=args.images, seed=7)
    images_dir = root / "train_images"
    annotations = read_train_csv(root / "train.csv")
    table = defect_table(images_dir, annotations)
    train, val, test = split_table(table, fractions=(0.5, 0.25, 0.25), seed=0)
    print(f"SYNTHETIC data: {len(table)} images of 1600x256 ({table['label'].sum()} defective), made in "
          f"{seconds:.0f} s; split {len(train)}/{len(val)}/{len(test)}")

    # ---- stage 1: classifier head on a frozen ResNet50
    classifier, weights = build_classifier(size)
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy",
                       metrics=["accuracy"])
    train_ds = classifier_dataset(images_dir, train, size, batch, shuffle=True, seed=0)
    val_ds = classifier_dataset(images_dir, val, size, batch)
    seconds, _ = timed(classifier.fit, train_ds, validation_data=val_ds, epochs=args.cls_epochs, verbose=0)
    y_val, s_val = classifier_scores(classifier, val_ds)
    threshold = choose_threshold(y_val, s_val, 0.99)
    print(f"classifier: ResNet50 weights {weights}; {args.cls_epochs} epochs in {seconds:.0f} s; "
          f"threshold {threshold:.3f} for validation recall >= 0.99: {threshold_summary(y_val, s_val, threshold)}")

    # ---- stage 2: ResUNet on the defective training images
    segmenter = resunet((*size, 3), base_filters=args.base_filters)
    segmenter.compile(optimizer=keras.optimizers.Adam(learning_rate=args.seg_lr), loss=focal_tversky_loss(),
                      metrics=[tversky_index, dice_coefficient])
    # Decoded once into memory (a few MB at this size) rather than from the JPEG files every epoch.
    x_train, y_train = arrays(segmentation_dataset(images_dir, annotations, defective(train), size, batch))
    x_val, y_val_masks = arrays(segmentation_dataset(images_dir, annotations, defective(val), size, batch))
    seconds, history = timed(segmenter.fit, x_train, y_train, batch_size=args.seg_batch, shuffle=True,
                             validation_data=(x_val, y_val_masks), epochs=args.seg_epochs, verbose=0)
    logs = history.history
    print(f"ResUNet (base {args.base_filters} filters, {segmenter.count_params():,} weights): {args.seg_epochs} "
          f"epochs in {seconds:.0f} s; loss {logs['loss'][0]:.3f} -> {logs['loss'][-1]:.3f}, validation Dice "
          f"(defective images, {size[0]}x{size[1]}) {logs['val_dice_coefficient'][-1]:.3f}")

    # ---- the two paths on the test split, timed after a warm-up
    ids = test["ImageId"].tolist()
    options = dict(images_dir=images_dir, batch_size=batch, min_area=(300, 300, 800, 1500), min_component=30)
    warm_up(classifier, size, (batch, 1))
    warm_up(segmenter, size, (batch, 1))
    gated, stats = predict_two_stage(ids, classifier, segmenter, threshold, **options)
    every, stats_all = predict_two_stage(ids, None, segmenter, gate=False, **options)
    truly_defective = set(defective(test))
    oracle = every[every["ImageId"].isin(truly_defective)]
    print(f"\ntest split: {len(ids)} images of 1600x256, {len(truly_defective)} defective; models at "
          f"{size[0]}x{size[1]}")
    print(f"  two-stage pipeline : {stats.images_per_second:6.2f} images/s, {stats.n_segmented} segmented, "
          f"mean Dice {score_submission(annotations, gated, ids):.4f}   ({stats})")
    print(f"  every image segm.  : {stats_all.images_per_second:6.2f} images/s, {stats_all.n_segmented} segmented, "
          f"mean Dice {score_submission(annotations, every, ids):.4f}   ({stats_all})")
    print(f"  ratio two-stage / every image: {stats.images_per_second / stats_all.images_per_second:.2f}")
    print(f"  empty submission   : mean Dice {score_submission(annotations, gated.iloc[0:0], ids):.4f}")
    print(f"  oracle gate        : mean Dice {score_submission(annotations, oracle, ids):.4f} (true labels decide)")

    # ---- per-image model cost at the lesson's full-mode sizes (random weights: speed does not depend on them)
    full = (128, 800)
    t_cls = per_image_seconds(build_classifier(full)[0], full, batch=4)
    t_seg = per_image_seconds(resunet((*full, 3), base_filters=16), full, batch=4)
    print(f"\nfull-mode sizes ({full[0]}x{full[1]}): ResNet50 classifier {t_cls:.3f} s/image, "
          f"ResUNet (base 16) {t_seg:.3f} s/image; the gate saves model time when the share sent is below "
          f"{max(0.0, 1 - t_cls / t_seg):.2f}")

    # ---- the real sample: models trained on SYNTHETIC images, scored against real masks
    sample = shared_data() / "severstal-sample"
    if (sample / "train.csv").is_file():
        real_dir, truth = sample / "train_images", read_train_csv(sample / "train.csv")
        real_ids = list_images(real_dir)
        labels = defect_table(real_dir, truth).set_index("ImageId").loc[real_ids, "label"].to_numpy()
        real_options = dict(options, images_dir=real_dir)
        real_gated, real_stats = predict_two_stage(real_ids, classifier, segmenter, threshold, **real_options)
        real_every, _ = predict_two_stage(real_ids, None, segmenter, gate=False, **real_options)
        real_oracle = real_every[real_every["ImageId"].isin(set(truth["ImageId"]))]
        print(f"\nreal sample ({sample}): {len(real_ids)} real 1600x256 images, {int(labels.sum())} defective, "
              f"{len(truth)} real masks; models trained on the SYNTHETIC images above")
        print(f"  gate on real images (threshold from synthetic validation): "
              f"{threshold_summary(labels, real_stats.scores, threshold)}")
        for name, table in [("two-stage pipeline", real_gated), ("every image segm.", real_every),
                            ("empty submission", real_gated.iloc[0:0]), ("oracle gate", real_oracle)]:
            per_class = score_submission(truth, table, real_ids, per_class=True)
            print(f"  {name:19}: mean Dice {per_class.mean():.4f}  (per class 1-4: "
                  f"{', '.join(f'{d:.3f}' for d in per_class)}; {int((table['EncodedPixels'] != '').sum())} masks)")
    else:
        print(f"\nreal sample: {sample} not present, skipped")
    print(f"machine at the end: {machine_load()}")


if __name__ == "__main__":
    main()
