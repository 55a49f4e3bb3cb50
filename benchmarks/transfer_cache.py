"""Lesson 2's phase 1 (frozen base, new head) end to end versus on cached features, in the same run.

Phase 1 of transfer learning trains only the head: the base is frozen, runs in
inference mode and no augmentation comes before it, so it computes the same features
for an image in every epoch. Training end to end pushes every image through the base
in every epoch (and every validation image after every epoch); the cached version
computes the pooled base features of the training and validation images once
(``defectlib.transfer.feature_extractor``) and trains the head on them
(``defectlib.transfer.head_model``, which shares its layers with the full model).

Both runs start from the same initial weights (seeded builds, checked), read the
same batches in the same shuffled order and train MobileNetV2's head at 224x224 for
10 epochs with Adam; the script checks that the two full models then give the same
predictions on the validation images, and prints the wall-clock and CPU times and
their ratios. Goal: the cached run at least 10x faster. The ratio cannot go much above
the number of epochs: end to end, each epoch passes every image through the base once;
cached, one pass in all, plus the head's training.

The base has RANDOM weights (``weights=None``): the time of a forward pass does not
depend on the values of the weights, and the equality check holds for any weights,
so no ImageNet download is needed. Their BatchNormalization statistics are set from
one batch of training images (``defectlib.model_tools.calibrate_batch_norm``), otherwise
the random base's features vanish (about 1e-13) and the heads would learn nothing
but their bias, which would make the agreement check empty. The accuracies of these
heads mean nothing and are not shown; only the times, the ratio and the agreement are.

Data: the training and validation splits of the course's evaluation protocol
(``defectlib.neu.with_test_split``: 1,152 and 288 images of the Kaggle copy), from
``$DEFECTLIB_NEU_DIR``, else ``../shared/data/NEU-DET`` beside the repository;
without it the script says so and exits 0. Run: ``python benchmarks/transfer_cache.py``
(``TRANSFER_CACHE_EPOCHS`` changes the 10 epochs). Seeded (``DEFECTLIB_SEED``). Other
work on the machine slows the wall clock: the load average is printed before and after.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # always the whole data set

from _common import machine_load, require, shared_data  # noqa: E402

EPOCHS = int(os.environ.get("TRANSFER_CACHE_EPOCHS", "10"))
IMAGE_SIZE = (224, 224)
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
GOAL = 10.0


def clocks(fn, *args, **kwargs) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    root = require(Path(os.environ.get("DEFECTLIB_NEU_DIR") or shared_data() / "NEU-DET"))

    import keras
    import numpy as np
    import tensorflow as tf

    from defectlib.config import seed_everything, settings
    from defectlib.neu import find_neu, neu_arrays, with_test_split, without_autotuning
    from defectlib.model_tools import calibrate_batch_norm
    from defectlib.transfer import feature_extractor, head_model, transfer_model

    # The pipelines shuffle themselves; Keras warns at every fit that its own shuffle=True is ignored.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    print("start:", machine_load())
    seed = settings().seed
    data = with_test_split(find_neu(root))
    x_train, y_train = neu_arrays(data, "train", color="rgb")
    x_val, y_val = neu_arrays(data, "validation", color="rgb")
    print(f"MobileNetV2 (random weights) at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, {len(x_train)} training and "
          f"{len(x_val)} validation images, batch {BATCH_SIZE}, {EPOCHS} epochs, Adam {LEARNING_RATE:g}")

    def batches(x, y, shuffle: bool):
        """The same batches for images and for features: one seeded shuffle of the same length."""
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(BATCH_SIZE).map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(tf.data.AUTOTUNE)
        return without_autotuning(ds)   # as lesson 2's pipelines (neu_datasets): both cores in every epoch

    calibration = x_train[np.random.default_rng(seed).choice(len(x_train), BATCH_SIZE, replace=False)].astype("float32")

    def build():
        seed_everything(seed)
        model = transfer_model("mobilenet_v2", image_size=IMAGE_SIZE, weights=None)
        calibrate_batch_norm(model, calibration)  # else the random base's features vanish (~1e-13)
        return model, {name: [w.numpy() for w in model.get_layer(name).weights] for name in ("base", "classifier")}

    def compile_(model):
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])

    # End to end: every epoch runs the base on all training and validation images.
    end_to_end, initial = build()
    compile_(end_to_end)
    e2e_wall, e2e_cpu, _ = clocks(end_to_end.fit, batches(x_train, y_train, True),
                                  validation_data=batches(x_val, y_val, False), epochs=EPOCHS, verbose=0)
    print(f"\nend to end:      {e2e_wall:7.1f} s wall, {e2e_cpu:7.1f} s CPU ({e2e_wall / EPOCHS:.1f} s per epoch)")

    # Cached: the base runs once per image; the head trains on the features.
    cached, initial_cached = build()
    same_start = all(np.array_equal(a, b) for name in initial for a, b in zip(initial[name], initial_cached[name]))
    extractor, head = feature_extractor(cached), head_model(cached)

    def extract():
        return (extractor.predict(batches(x_train, y_train, False), verbose=0),
                extractor.predict(batches(x_val, y_val, False), verbose=0))

    feat_wall, feat_cpu, (f_train, f_val) = clocks(extract)
    compile_(head)
    head_wall, head_cpu, _ = clocks(head.fit, batches(f_train, y_train, True),
                                    validation_data=batches(f_val, y_val, False), epochs=EPOCHS, verbose=0)
    cached_wall, cached_cpu = feat_wall + head_wall, feat_cpu + head_cpu
    print(f"cached features: {cached_wall:7.1f} s wall, {cached_cpu:7.1f} s CPU "
          f"(features once: {feat_wall:.1f} s wall; head, {EPOCHS} epochs: {head_wall:.1f} s wall)")

    # The same model in the end: the full models (image in) agree on the validation images.
    p_e2e = end_to_end.predict(batches(x_val, y_val, False), verbose=0)
    p_cached = cached.predict(batches(x_val, y_val, False), verbose=0)
    agree = float((p_e2e.argmax(1) == p_cached.argmax(1)).mean())
    gap = float(np.abs(p_e2e - p_cached).max())
    classifier_gap = max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in
                         zip(end_to_end.get_layer("classifier").weights, cached.get_layer("classifier").weights))
    base_unchanged = all(np.array_equal(w.numpy(), v) for model in (end_to_end, cached)
                         for w, v in zip(model.get_layer("base").weights, initial_cached["base"]))
    changed = any(not np.array_equal(w.numpy(), v) for w, v in
                  zip(cached.get_layer("classifier").weights, initial_cached["classifier"]))

    print("\nend:", machine_load())
    wall_ratio, cpu_ratio = e2e_wall / cached_wall, e2e_cpu / cached_cpu
    print(f"\nspeed-up, end to end / cached: {wall_ratio:.1f}x wall clock, {cpu_ratio:.1f}x CPU time")
    print(f"same initial weights: {same_start}; head trained: {changed}; base unchanged by training: {base_unchanged}")
    print(f"validation predictions: {agree:.1%} the same class; largest probability difference {gap:.1e}; "
          f"largest classifier weight difference {classifier_gap:.1e}")
    print("(random weights: the accuracies of these heads mean nothing, so none is shown)")
    same = same_start and changed and base_unchanged and gap < 1e-3  # equal up to float rounding
    print(f"goal (same predictions, cached >= {GOAL:.0f}x faster in wall clock): "
          f"{'met' if same and wall_ratio >= GOAL else 'NOT met'}")
    if not same:
        raise SystemExit("the cached head does not reproduce the end-to-end head: see the figures above")


if __name__ == "__main__":
    main()
