"""Every classifier of the course on the real NEU data, trained in one run, in one comparison table.

Models: lesson 1's refined CNN (``defectlib.cnn.refined_cnn``); lesson 3's transformers
from scratch (the ViT with 20x20 patches, the same with augmentation, with a
convolutional stem, and the hybrid; then two pure ViTs on images averaged to 100x100 and cut
into 10x10 patches, with augmentation, trained longer: ``vit_pooled`` with plain patches and
``vit_spt`` with Shifted Patch Tokenization, so that SPT is the only difference between
them); lesson 2's ImageNet CNNs (MobileNetV2 with a
frozen base and a new head; ResNet50V2, head then its last residual block fine-tuned);
and the pretrained KerasHub ViT-B/16 (head, then its last block fine-tuned). All use
the course's evaluation protocol (``with_test_split``: Kaggle's validation images are the
test set, a stratified validation split is carved from training) and are measured by
``defectlib.compare`` the same way: validation accuracy (the recommendation chooses on
it), test accuracy (reported), training time (wall clock and the process's CPU time,
which other work on the machine affects much less), parameters, size of the ``.keras``
file (without optimizer state) and images per second at batch 32 (after a warm-up, median
of five timed runs). A pretrained model whose weights cannot be downloaded is trained and
measured with random weights of the same architecture (ViT-B/16's for the ViT): its size,
training time and speed are real, its accuracy is not reported. The ViT with 10x10 patches
(400 tokens) is left out by default (add it with ``MODELS_ONLY``).

Run: ``python benchmarks/models.py``. Data: ``$DEFECTLIB_NEU_DIR``, else
``../shared/data/NEU-DET`` beside the repository; without it the script says so and exits 0.
Settings (environment): ``MODELS_EPOCHS`` (default 20) for every from-scratch model but the
two pooled ViTs, ``MODELS_LONG_EPOCHS`` (default 60: what fits in ten minutes on 2 cores with
TensorFlow's oneDNN kernels) for those, ``MODELS_HEAD_EPOCHS`` and
``MODELS_FINETUNE_EPOCHS`` (default 5 each) for the pretrained ones, ``MODELS_ONLY`` a
comma-separated subset of names, ``MODELS_MAX_PER_CLASS`` to keep only that many training
images per class (a smoke run; a quarter of it for the other splits),
``MODELS_SEEDS`` (for example ``42,43,44,45,46``) to train every from-scratch model once per
seed and print each run, the mean +- sd and the worst (the table holds the first seed's run),
``MODELS_FINAL_FIT=1`` to train every model on train + validation (1,440 images: the final fit,
once the choices are made; the validation accuracy is then not held out, and no model is
recommended). Each from-scratch run also prints its test accuracy with the probabilities
averaged over the image and its three flips (test-time augmentation). Seeded
(``DEFECTLIB_SEED``: the data split, and the one run without ``MODELS_SEEDS``). The load
average is printed before and after.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # always the full recipe; MODELS_MAX_PER_CLASS makes a smoke run

from _common import flip_accuracy, machine_load, require, shared_data, with_validation_in_train  # noqa: E402

EPOCHS = int(os.environ.get("MODELS_EPOCHS", "20"))
LONG_EPOCHS = int(os.environ.get("MODELS_LONG_EPOCHS", "60"))
HEAD_EPOCHS = int(os.environ.get("MODELS_HEAD_EPOCHS", "5"))
FINETUNE_EPOCHS = int(os.environ.get("MODELS_FINETUNE_EPOCHS", "5"))
FINAL_FIT = os.environ.get("MODELS_FINAL_FIT", "0") == "1"
MAX_PER_CLASS = int(os.environ["MODELS_MAX_PER_CLASS"]) if os.environ.get("MODELS_MAX_PER_CLASS") else None
BATCH_SIZE = 32
VIT_SIZE = {"hidden_dim": 64, "num_heads": 4, "num_layers": 4, "mlp_dim": 128}  # as in the lesson
TRANSFER_SIZE = (224, 224)
GOAL_ACCURACY, GOAL_SECONDS = 0.97, 600  # best pure ViT: at least 97 % on test in at most 10 minutes


def scratch_candidates(cnn, models) -> list[tuple[str, object, float, float, int]]:
    """(name, builder, peak learning rate, weight decay, epochs) of every from-scratch model, in table order."""
    pooled = {"patch_size": 10, "downsample": 2, **VIT_SIZE}  # 100x100 images: 100 tokens, augmented
    return [
        ("vit", lambda: models.build_vit(patch_size=20, **VIT_SIZE, name="vit"), 1e-3, 0.05, EPOCHS),
        ("vit_augmented", lambda: models.build_vit(patch_size=20, augment=True, **VIT_SIZE, name="vit_augmented"),
         1e-3, 0.05, EPOCHS),
        ("vit_small_patches",
         lambda: models.build_vit(patch_size=10, augment=True, **VIT_SIZE, name="vit_small_patches"),
         1e-3, 0.05, EPOCHS),
        ("vit_conv_stem", lambda: models.build_vit(patch_size=20, conv_stem=True, augment=True, **VIT_SIZE,
                                             name="vit_conv_stem"), 1e-3, 0.05, EPOCHS),
        ("hybrid", lambda: models.hybrid(), 2e-3, 0.05, EPOCHS),
        ("vit_pooled", lambda: models.build_vit_spt(**pooled, shifted=False, name="vit_pooled"), 1e-3, 0.05,
         LONG_EPOCHS),
        ("vit_spt", lambda: models.build_vit_spt(**pooled, name="vit_spt"), 1e-3, 0.05, LONG_EPOCHS),
        ("refined_cnn", lambda: cnn.refined_cnn(), 3e-3, 0.0, EPOCHS),  # lesson 1's recipe: Adam, peak 3e-3
    ]


def seed_summary(runs: dict[str, list[tuple[int, float, float, float]]]) -> str:
    """Per model: each seed's test accuracy, the mean +- sd and the worst, with flips, training time.

    ``runs`` maps a model to its (seed, test accuracy, training seconds, test accuracy with flips).

    Examples
    --------
    >>> print(seed_summary({"m": [(42, 0.97, 300.0, 0.98), (43, 0.99, 310.0, 0.99)]}))  # doctest: +NORMALIZE_WHITESPACE
    m: test 97.00 / 99.00 %; mean 98.00 +- 1.41 %, worst 97.00 %; with flips: mean 98.50 %,
    worst 98.00 %; training 300 to 310 s
    """
    import numpy as np

    lines = []
    for name, rows in runs.items():
        accuracy, flips = (np.array([r[i] for r in rows]) * 100 for i in (1, 3))
        seconds = [r[2] for r in rows]
        sd = accuracy.std(ddof=1) if len(accuracy) > 1 else 0.0
        lines.append(f"{name}: test {' / '.join(f'{a:.2f}' for a in accuracy)} %; mean {accuracy.mean():.2f} "
                     f"+- {sd:.2f} %, worst {accuracy.min():.2f} %; with flips: mean {flips.mean():.2f} %, worst "
                     f"{flips.min():.2f} %; training {min(seconds):.0f} to {max(seconds):.0f} s")
    return "\n".join(lines)


def main() -> None:
    root = require(Path(os.environ.get("DEFECTLIB_NEU_DIR") or shared_data() / "NEU-DET"))

    import keras
    import keras_hub

    from defectlib import cnn, vit as models, vit_tools
    from defectlib.compare import Stopwatch, comparison_table, format_table, measure, recommend, train_and_record
    from defectlib.config import seed_everything, settings
    from defectlib.neu import find_neu, neu_datasets, with_test_split
    from defectlib.transfer import transfer_model, unfreeze_top
    from defectlib.weights import pretrained

    # The pipelines shuffle themselves; Keras warns at every fit that its own shuffle=True is ignored.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    only = {n.strip() for n in os.environ.get("MODELS_ONLY", "").split(",") if n.strip()}
    default_skip = {"vit_small_patches"}

    def wanted(name: str) -> bool:
        if (only and name not in only) or (not only and name in default_skip):
            print(f"\n== {name}: skipped ({'not in MODELS_ONLY' if only else '400 tokens: slow on a CPU'})")
            return False
        return True

    print("start:", machine_load())
    seed = settings().seed
    seeds = [int(s) for s in os.environ.get("MODELS_SEEDS", "").split(",") if s.strip()] or [seed]
    runs: dict[str, list[tuple[int, float, float, float]]] = {}
    data = with_test_split(find_neu(root, max_per_class=MAX_PER_CLASS))
    splits = ("train", "validation", "test")
    fit_data = with_validation_in_train(data) if FINAL_FIT else data

    def pipelines(color: str = "grayscale") -> tuple:
        """Train (on ``fit_data``), validation and test pipelines in ``color``."""
        (train_ds,) = neu_datasets(fit_data, color=color, batch_size=BATCH_SIZE, seed=seed, splits=("train",))
        return (train_ds, *neu_datasets(data, color=color, batch_size=BATCH_SIZE, splits=("validation", "test")))

    train, val, test = pipelines()
    if FINAL_FIT:
        print(f"FINAL FIT: training on train + validation, {len(fit_data.split('train'))} images; the validation "
              "accuracy below is on images the models trained on")
    records = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for name, build, learning_rate, weight_decay, epochs in scratch_candidates(cnn, models):
            if not wanted(name):
                continue
            for run_seed in seeds:
                seed_everything(run_seed)
                model = build()
                vit_tools.compile_transformer(model, epochs * len(train), learning_rate=learning_rate,
                                           weight_decay=weight_decay)
                print(f"\n== {name}, seed {run_seed}: {model.count_params():,} parameters, {epochs} epochs, peak "
                      f"learning rate {learning_rate:g}, weight decay {weight_decay:g} ({machine_load()})", flush=True)
                record, _ = train_and_record(name, model, train, val, epochs, test_ds=test, workdir=workdir,
                                             verbose=2)
                print(f"{name}, seed {run_seed}: validation {record['val accuracy']:.2%}, test "
                      f"{record['test accuracy']:.2%}, {record['train time (s)']:.0f} s of training "
                      f"({record['train CPU (s)']:.0f} s CPU)", flush=True)
                flips = flip_accuracy(model, test)
                print(f"{name}, seed {run_seed}: test with flips at test time {flips:.2%}", flush=True)
                runs.setdefault(name, []).append((run_seed, record["test accuracy"], record["train time (s)"], flips))
                if run_seed == seeds[0]:
                    records.append(record)
                keras.backend.clear_session()

        def two_phases(name, model, real, train_ds, val_ds, test_ds, unfreeze, note):
            """Head on the frozen base, then (if ``unfreeze``) the top at a 100x lower rate; one measured row."""
            clock = Stopwatch()
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            with clock:
                model.fit(train_ds, validation_data=val_ds, epochs=HEAD_EPOCHS, verbose=2)
            if unfreeze is not None:
                unfreeze(model)
                model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy",
                              metrics=["accuracy"])
                with clock:
                    model.fit(train_ds, validation_data=val_ds, epochs=FINETUNE_EPOCHS, verbose=2)
            record = measure(name, model, val_ds, test_ds, clock=clock, real_weights=real, note=note, workdir=workdir,
                             epochs=HEAD_EPOCHS + (FINETUNE_EPOCHS if unfreeze else 0))
            print(f"{name}: {clock.wall:.0f} s of training; weights: {'ImageNet' if real else 'RANDOM'}", flush=True)
            records.append(record)
            keras.backend.clear_session()

        rgb = None
        for name, finetune_layers in [("mobilenet_v2", 0), ("resnet50_v2", 13)]:
            if not wanted(name):
                continue
            rgb = rgb or pipelines("rgb")
            seed_everything(seed)
            print(f"\n== {name}: ImageNet base at {TRANSFER_SIZE[0]} px ({machine_load()})", flush=True)

            def build(weights, name=name):
                return transfer_model(name, image_size=TRANSFER_SIZE, input_shape=(200, 200, 3), weights=weights)

            try:
                model, real = pretrained(build, f"{name} ImageNet weights")
            except RuntimeError as error:
                print(f"{name}: no ImageNet weights here ({str(error)[:120]}...): random weights, no accuracy")
                model, real = build(None), False
            unfreeze = (lambda m, n=finetune_layers: unfreeze_top(m, n)) if finetune_layers else None
            two_phases(name, model, real, *rgb, unfreeze,
                       "head + fine-tuned top" if finetune_layers else "frozen base, head only")

        if wanted("vit_pretrained"):
            seed_everything(seed)
            print(f"\n== vit_pretrained: KerasHub {vit_tools.VIT_PRESET} ({machine_load()})", flush=True)
            try:
                model, real = vit_tools.pretrained_vit()
            except RuntimeError as error:
                print(f"vit_pretrained: no preset here ({str(error)[:120]}...): ViT-B/16 with random weights, "
                      "no accuracy")
                backbone = keras_hub.models.ViTBackbone(**vit_tools.VIT_B16_CONFIG, name="vit_backbone")
                model, real = vit_tools.vit_classifier(backbone), False
            two_phases("vit_pretrained", model, real, train, val, test, lambda m: models.unfreeze_vit_top(m, 1),
                       "ViT-B/16, head + fine-tuned top")

    print(f"\nend: {machine_load()}; {time.perf_counter() - start:.0f} s in all")
    if not records:
        return
    if len(seeds) > 1:
        print(f"\nfrom-scratch models over seeds {', '.join(map(str, seeds))} (test split):")
        print(seed_summary(runs))
    table = comparison_table(records)
    sizes = " / ".join(f"{len((fit_data if split == 'train' else data).split(split))}" for split in splits)
    print(f"\nNEU, {sizes} training / validation / test images ({data.root}"
          f"{f', at most {MAX_PER_CLASS} training images per class: a SMOKE RUN' if MAX_PER_CLASS else ''}"
          f"{', FINAL FIT: the validation images were trained on' if FINAL_FIT else ''}), {EPOCHS} epochs from "
          f"scratch ({LONG_EPOCHS} for vit_pooled and vit_spt), {HEAD_EPOCHS} + {FINETUNE_EPOCHS} for pretrained "
          f"models, {os.cpu_count()} CPU cores, one run:")
    print(format_table(table).to_string())
    if not FINAL_FIT:
        print("\n" + recommend(table))
    pure = [name for name in ("vit", "vit_augmented", "vit_small_patches", "vit_pooled", "vit_spt")
            if name in table.index]
    # A final fit leaves no held-out validation to choose on: then every pure ViT trained is checked.
    checked = pure if FINAL_FIT or not pure else [table.loc[pure, "val accuracy"].idxmax()]
    for name in checked:
        accuracy = sum(r[1] for r in runs[name]) / len(runs[name])
        flips = sum(r[3] for r in runs[name]) / len(runs[name])
        seconds = max(r[2] for r in runs[name])
        met = accuracy >= GOAL_ACCURACY and seconds <= GOAL_SECONDS
        print(f"goal (pure ViT, no convolutional stem{'' if FINAL_FIT else ', chosen on validation'}: at least "
              f"{GOAL_ACCURACY:.0%} on test, the mean over {len(runs[name])} seed(s), each run in at most "
              f"{GOAL_SECONDS} s of training): {'met' if met else 'NOT met'} ({name}: test {accuracy:.2%}, "
              f"{flips:.2%} with flips at test time; slowest run {seconds:.0f} s wall clock at this load)")


if __name__ == "__main__":
    main()
