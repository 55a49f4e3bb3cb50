"""Lesson 2's two caches, in the same run: training end to end versus on activations computed once.

``--phase 1`` (the default): the head of MobileNetV2 on its frozen base. The base is frozen,
runs in inference mode and no augmentation comes before it, so it computes the same features
for an image in every epoch. The cached run computes the pooled features of the training and
validation images once (``defectlib.transfer.feature_extractor``) and trains the head on them
(``head_model``, which shares its layers with the full model). Goal: at least 10x faster.

``--phase 2``: fine-tuning ResNet50V2's top 13 layers (``unfreeze_top``), as lesson 2 does. Below
the cut ``conv5_block2_out`` everything is frozen and deterministic, so the cached run computes the
activations there once and trains the model above the cut (``split_at``). Goal: at least 3x faster.

``--phase 3``: fine-tuning ViT-B/16's last block and final norm (``unfreeze_vit_top``), as lesson 3
does, above the cut before that block (``defectlib.vit.split_vit``), with ViT-B/16's architecture
(``VIT_B16_CONFIG``, random weights). Goal: at least 3x faster. Slow: each end-to-end epoch runs
ViT-B/16 on every image; ``--epochs 1`` measures the parts (one epoch each way, and the activations).

Both runs of a phase start from the same initial weights (seeded builds, checked), read the
same batches in the same shuffled order and train for 10 epochs with Adam (1e-3 for the head,
lesson 2's 1e-5 for fine-tuning); the script checks that the two full models then give the same
predictions on the validation images, that the trainable weights moved and that nothing else did,
and prints the wall-clock and CPU times and their ratios. The ratio cannot go much above the
number of epochs: end to end, each epoch passes every image through the network once; cached,
one pass in all, plus the training above the cut.

The base has RANDOM weights (``weights=None``): the time of a forward pass does not
depend on the values of the weights, and the equality check holds for any weights,
so no ImageNet download is needed. Their BatchNormalization statistics are set from
one batch of training images (``defectlib.model_tools.calibrate_batch_norm``), otherwise
the random base's features vanish (about 1e-13) and the models would learn nothing
but their bias, which would make the agreement check empty. The accuracies of these
models mean nothing and are not shown; only the times, the ratio and the agreement are.

Data: the training and validation splits of the course's evaluation protocol
(``defectlib.neu.with_test_split``: 1,152 and 288 images of the Kaggle copy), from
``$DEFECTLIB_NEU_DIR``, else ``../shared/data/NEU-DET`` beside the repository;
without it the script says so and exits 0. Run: ``python benchmarks/transfer_cache.py [--phase 2]``
(``--epochs`` changes the 10 epochs: ``--epochs 1`` is a smoke run). Seeded (``DEFECTLIB_SEED``). Other
work on the machine slows the wall clock: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # always the whole data set

from _common import argument_parser, machine_load, neu_root  # noqa: E402

IMAGE_SIZE = (224, 224)
BATCH_SIZE = 32


@dataclass(frozen=True)
class Phase:
    """What one phase trains: the network, how many top layers of its base, the cut, the rate, the goal."""

    network: str
    unfrozen: int
    cut: str | None  # None: after pooling (phase 1's features)
    learning_rate: float
    goal: float


PHASES = {1: Phase("mobilenet_v2", 0, None, 1e-3, 10.0), 2: Phase("resnet50_v2", 13, "conv5_block2_out", 1e-5, 3.0),
          3: Phase("vit_b16", 1, "the last block", 1e-5, 3.0)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of training, in both runs")
    parser.add_argument("--phase", type=int, choices=sorted(PHASES), default=1,
                        help="1: the head on MobileNetV2's features; 2: ResNet50V2's top block above the cut; "
             "3: ViT-B/16's last block above its cut (lesson 3)")
    return parser.parse_args(argv)


def clocks(fn, *args, **kwargs) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


@dataclass
class Setup:
    """What both runs share: the images, the seed, the number of epochs; the same model and batches for each."""

    seed: int
    epochs: int
    phase: Phase
    x_train: object
    y_train: object
    x_val: object
    y_val: object
    calibration: object  # the training images that set the random base's batch-norm statistics

    def batches(self, x, y, shuffle: bool):
        """The same batches for images and for features: one seeded shuffle of the same length."""
        import tensorflow as tf

        from defectlib.images import without_autotuning

        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(BATCH_SIZE).map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(tf.data.AUTOTUNE)
        return without_autotuning(ds)   # as lesson 2's pipelines (neu_datasets): both cores in every epoch

    def build(self):
        """The phase's network with random weights, batch norm calibrated, top unfrozen; its initial weights."""
        from defectlib.config import seed_everything
        from defectlib.model_tools import calibrate_batch_norm
        from defectlib.transfer import transfer_model, unfreeze_top

        seed_everything(self.seed)
        if self.phase.network == "vit_b16":  # ViT-B/16's architecture, random weights; no batch norm
            import keras_hub

            from defectlib.vit import unfreeze_vit_top
            from defectlib.vit_tools import VIT_B16_CONFIG, vit_classifier

            backbone = keras_hub.models.ViTBackbone(**VIT_B16_CONFIG, name="vit_backbone")
            model = vit_classifier(backbone, input_shape=self.x_train.shape[1:])
            unfreeze_vit_top(model, self.phase.unfrozen)
        else:
            model = transfer_model(self.phase.network, image_size=IMAGE_SIZE, weights=None)
            calibrate_batch_norm(model, self.calibration)  # else the random base's features vanish (~1e-13)
            if self.phase.unfrozen:
                unfreeze_top(model, self.phase.unfrozen)
        return model, {"trainable": [w.numpy() for w in model.trainable_weights],
                       "frozen": [w.numpy() for w in model.non_trainable_weights]}

    def compile(self, model) -> None:
        import keras

        model.compile(optimizer=keras.optimizers.Adam(self.phase.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def load(epochs: int, phase: Phase) -> Setup:
    """The training and validation images of the protocol, in RGB, and one batch of them for batch norm."""
    import numpy as np

    from defectlib.config import settings
    from defectlib.neu import find_neu, neu_arrays, with_test_split

    root = neu_root()
    print("start:", machine_load())
    seed = settings().seed
    data = with_test_split(find_neu(root))
    x_train, y_train = neu_arrays(data, "train", color="rgb")
    x_val, y_val = neu_arrays(data, "validation", color="rgb")
    what = f"top {phase.unfrozen} layers, cut at {phase.cut}" if phase.cut else "head on the pooled features"
    print(f"{phase.network} (random weights), {what}, at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}: {len(x_train)} training "
          f"and {len(x_val)} validation images, batch {BATCH_SIZE}, {epochs} epochs, Adam {phase.learning_rate:g}")
    calibration = x_train[np.random.default_rng(seed).choice(len(x_train), BATCH_SIZE, replace=False)].astype("float32")
    return Setup(seed, epochs, phase, x_train, y_train, x_val, y_val, calibration)


def train_end_to_end(setup: Setup) -> tuple[object, dict, float, float]:
    """End to end: every epoch runs the whole network on all training and validation images."""
    model, initial = setup.build()
    setup.compile(model)
    wall, cpu, _ = clocks(model.fit, setup.batches(setup.x_train, setup.y_train, True),
                          validation_data=setup.batches(setup.x_val, setup.y_val, False), epochs=setup.epochs,
                          verbose=0)
    print(f"\nend to end:      {wall:7.1f} s wall, {cpu:7.1f} s CPU ({wall / setup.epochs:.1f} s per epoch)")
    return model, initial, wall, cpu


def train_cached(setup: Setup) -> tuple[object, dict, float, float]:
    """Cached: the network below the cut runs once per image; the part above trains on its output."""
    from defectlib.transfer import feature_extractor, head_model, split_at
    from defectlib.vit import split_vit

    model, initial = setup.build()
    cut = setup.phase.cut
    if setup.phase.network == "vit_b16":
        extractor, head = split_vit(model, setup.phase.unfrozen)
    else:
        extractor, head = split_at(model, cut) if cut else (feature_extractor(model), head_model(model))

    def extract():
        return (extractor.predict(setup.batches(setup.x_train, setup.y_train, False), verbose=0),
                extractor.predict(setup.batches(setup.x_val, setup.y_val, False), verbose=0))

    feat_wall, feat_cpu, (f_train, f_val) = clocks(extract)
    setup.compile(head)
    head_wall, head_cpu, _ = clocks(head.fit, setup.batches(f_train, setup.y_train, True),
                                    validation_data=setup.batches(f_val, setup.y_val, False), epochs=setup.epochs,
                                    verbose=0)
    wall, cpu = feat_wall + head_wall, feat_cpu + head_cpu
    print(f"cached:          {wall:7.1f} s wall, {cpu:7.1f} s CPU "
          f"(activations once: {feat_wall:.1f} s wall; above the cut, {setup.epochs} epochs: {head_wall:.1f} s wall)")
    return model, initial, wall, cpu


def agreement(setup: Setup, end_to_end, cached, initial: dict, initial_cached: dict) -> dict:
    """The same model in the end: the full models (image in) agree on the validation images."""
    import numpy as np

    p_e2e = end_to_end.predict(setup.batches(setup.x_val, setup.y_val, False), verbose=0)
    p_cached = cached.predict(setup.batches(setup.x_val, setup.y_val, False), verbose=0)
    trained_e2e, trained_cached = ([w.numpy() for w in m.trainable_weights] for m in (end_to_end, cached))
    return {
        "same_start": all(np.array_equal(a, b) for kind in initial for a, b in zip(initial[kind], initial_cached[kind])),
        "agree": float((p_e2e.argmax(1) == p_cached.argmax(1)).mean()),
        "gap": float(np.abs(p_e2e - p_cached).max()),
        "weight_gap": max(float(np.abs(a - b).max()) for a, b in zip(trained_e2e, trained_cached)),
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(trained_cached, initial_cached["trainable"])),
        "frozen_unchanged": all(np.array_equal(w.numpy(), v) for model in (end_to_end, cached)
                                for w, v in zip(model.non_trainable_weights, initial_cached["frozen"])),
    }


def report(e2e_wall: float, e2e_cpu: float, cached_wall: float, cached_cpu: float, check: dict, goal: float) -> None:
    """The speed-up, the checks and the goal; exits with an error when the two models differ."""
    print("\nend:", machine_load())
    wall_ratio, cpu_ratio = e2e_wall / cached_wall, e2e_cpu / cached_cpu
    print(f"\nspeed-up, end to end / cached: {wall_ratio:.1f}x wall clock, {cpu_ratio:.1f}x CPU time")
    print(f"same initial weights: {check['same_start']}; trainable weights moved by up to {check['moved']:.1e}; "
          f"frozen weights unchanged by training: {check['frozen_unchanged']}")
    print(f"validation predictions: {check['agree']:.1%} the same class; largest probability difference "
          f"{check['gap']:.1e}; largest trained weight difference {check['weight_gap']:.1e}")
    print("(random weights: the accuracies of these models mean nothing, so none is shown)")
    # equal up to float rounding
    same = check["same_start"] and check["moved"] > 0 and check["frozen_unchanged"] and check["gap"] < 1e-3
    print(f"goal (same predictions, cached >= {goal:.0f}x faster in wall clock): "
          f"{'met' if same and wall_ratio >= goal else 'NOT met'}")
    if not same:
        raise SystemExit("the cached run does not reproduce the end-to-end run: see the figures above")


def main() -> None:
    args = parse_args()
    # The pipelines shuffle themselves; Keras warns at every fit that its own shuffle=True is ignored.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    setup = load(args.epochs, PHASES[args.phase])
    end_to_end, initial, e2e_wall, e2e_cpu = train_end_to_end(setup)
    cached, initial_cached, cached_wall, cached_cpu = train_cached(setup)
    check = agreement(setup, end_to_end, cached, initial, initial_cached)
    report(e2e_wall, e2e_cpu, cached_wall, cached_cpu, check, setup.phase.goal)


if __name__ == "__main__":
    main()
