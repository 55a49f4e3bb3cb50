"""Every classifier of the course on the real NEU data, trained in one run, in one comparison table.

Models: lesson 1's refined CNN (``defectlib.cnn.refined_cnn``); lesson 3's transformers
from scratch (the ViT with 20x20 patches, the same with augmentation, with a
convolutional stem, and the hybrid; then two pure ViTs on images averaged to 100x100 and cut
into 10x10 patches, with augmentation, trained longer: ``vit_pooled`` with plain patches and
``vit_spt`` with Shifted Patch Tokenization, so that SPT is the only difference between
them); lesson 2's ImageNet CNNs (MobileNetV2 with a
frozen base and a new head; ResNet50V2, head then its last residual block fine-tuned);
and the pretrained KerasHub ViT-B/16 (head, then its last block fine-tuned). As in lessons 2
and 3, each head trains on features computed once, and ResNet50V2's block on the activations
below it, computed once (``defectlib.transfer.split_at``), ViT-B/16's last block on the tokens
entering it (``defectlib.vit.split_vit``). All use
the course's evaluation protocol (``with_test_split``: Kaggle's validation images are the
test set, a stratified validation split is carved from training) and are measured by
``defectlib.compare`` the same way: validation accuracy (the recommendation chooses on
it), test accuracy (reported), training time (wall clock and the process's CPU time,
which other work on the machine affects much less), parameters, size of the ``.keras``
file (without optimizer state) and images per second at batch 32 (after a warm-up, median
of five timed runs). A pretrained model whose weights cannot be downloaded is trained and
measured with random weights of the same architecture (ViT-B/16's for the ViT): its size,
training time and speed are real, its accuracy is not reported. The ViT with 10x10 patches
(400 tokens) is left out by default (add it with ``--only``).

Run: ``python benchmarks/models.py`` (``--help`` lists the settings). Data: ``$DEFECTLIB_NEU_DIR``, else
``../shared/data/NEU-DET`` beside the repository; without it the script says so and exits 0.
Settings: ``--epochs`` (default 20) for every from-scratch model but the two pooled ViTs,
``--long-epochs`` (default 60: what fits in ten minutes on 2 cores with TensorFlow's oneDNN
kernels) for those, ``--head-epochs`` and ``--finetune-epochs`` (default 5 each) for the
pretrained ones, ``--only`` a comma-separated subset of names, ``--max-per-class`` to keep only
that many training images per class (a smoke run; a quarter of it for the other splits),
``--seeds`` (for example ``--seeds 42,43,44,45,46``) to train every from-scratch model once per
seed and print each run, the mean +- sd and the worst (the table holds the first seed's run),
``--final-fit`` to train every model on train + validation (1,440 images: the final fit,
once the choices are made; the validation accuracy is then not held out, and no model is
recommended). Each from-scratch run also prints its test accuracy with the probabilities
averaged over the image and its three flips (test-time augmentation). Seeded
(``DEFECTLIB_SEED``: the data split, and the one run without ``--seeds``). The load
average is printed before and after. For example, plain against shifted patches over three
seeds: ``python benchmarks/models.py --only vit_pooled,vit_spt --seeds 42,43,44 --long-epochs 30``;
a smoke run: ``python benchmarks/models.py --only vit --max-per-class 5 --epochs 1``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # always the full recipe; --max-per-class makes a smoke run

from _common import (argument_parser, comma_separated, flip_accuracy, machine_load, neu_root,  # noqa: E402
                     with_validation_in_train)

BATCH_SIZE = 32
VIT_SIZE = {"hidden_dim": 64, "num_heads": 4, "num_layers": 4, "mlp_dim": 128}  # as in the lesson
TRANSFER_SIZE = (224, 224)
GOAL_ACCURACY, GOAL_SECONDS = 0.97, 600  # best pure ViT: at least 97 % on test in at most 10 minutes
DEFAULT_SKIP = {"vit_small_patches"}  # trained only when --only names it


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs of every from-scratch model but vit_pooled and vit_spt")
    parser.add_argument("--long-epochs", type=int, default=60,
                        help="epochs of vit_pooled and vit_spt (what fits in ten minutes on 2 cores with oneDNN)")
    parser.add_argument("--head-epochs", type=int, default=5, help="pretrained models: epochs of the head alone")
    parser.add_argument("--finetune-epochs", type=int, default=5,
                        help="pretrained models: epochs with the top of the base unfrozen")
    parser.add_argument("--only", type=comma_separated(), default=[], metavar="NAME[,NAME...]",
                        help="train only these models (as named in the table; default: all but vit_small_patches)")
    parser.add_argument("--max-per-class", type=int, default=None, metavar="N",
                        help="keep only N training images per class, a smoke run (default: all)")
    parser.add_argument("--seeds", type=comma_separated(int), default=[], metavar="SEED[,SEED...]",
                        help="train every from-scratch model once per seed and summarise them "
                             "(default: DEFECTLIB_SEED, once)")
    parser.add_argument("--final-fit", action=argparse.BooleanOptionalAction, default=False,
                        help="train on train + validation (1,440 images); no validation accuracy held out")
    return parser.parse_args(argv)


@dataclass
class Run:
    """What the steps of one run share: the settings, the data, and the results so far."""

    args: argparse.Namespace
    data: object  # NEU after with_test_split: validation and test come from it
    fit_data: object  # what the models train on: ``data``, or with validation moved into train (--final-fit)
    seed: int  # DEFECTLIB_SEED: the split, the pipelines' shuffle, the pretrained models
    seeds: list[int]  # the from-scratch models' seeds
    workdir: str = ""
    records: list[dict] = field(default_factory=list)  # the table's rows
    runs: dict[str, list[tuple[int, float, float, float]]] = field(default_factory=dict)  # see seed_summary

    def wanted(self, name: str) -> bool:
        only = self.args.only
        if (only and name not in only) or (not only and name in DEFAULT_SKIP):
            print(f"\n== {name}: skipped ({'not in --only' if only else '400 tokens: slow on a CPU'})")
            return False
        return True

    def pipelines(self, color: str = "grayscale") -> tuple:
        """Train (on ``fit_data``), validation and test pipelines in ``color``."""
        from defectlib.neu import neu_datasets

        (train_ds,) = neu_datasets(self.fit_data, color=color, batch_size=BATCH_SIZE, seed=self.seed,
                                   splits=("train",))
        return (train_ds, *neu_datasets(self.data, color=color, batch_size=BATCH_SIZE,
                                        splits=("validation", "test")))


def scratch_candidates(cnn, models, epochs: int, long_epochs: int) -> list[tuple[str, object, float, float, int]]:
    """(name, builder, peak learning rate, weight decay, epochs) of every from-scratch model, in table order."""
    pooled = {"patch_size": 10, "downsample": 2, **VIT_SIZE}  # 100x100 images: 100 tokens, augmented
    return [
        ("vit", lambda: models.build_vit(patch_size=20, **VIT_SIZE, name="vit"), 1e-3, 0.05, epochs),
        ("vit_augmented", lambda: models.build_vit(patch_size=20, augment=True, **VIT_SIZE, name="vit_augmented"),
         1e-3, 0.05, epochs),
        ("vit_small_patches",
         lambda: models.build_vit(patch_size=10, augment=True, **VIT_SIZE, name="vit_small_patches"),
         1e-3, 0.05, epochs),
        ("vit_conv_stem", lambda: models.build_vit(patch_size=20, conv_stem=True, augment=True, **VIT_SIZE,
                                             name="vit_conv_stem"), 1e-3, 0.05, epochs),
        ("hybrid", lambda: models.hybrid(), 2e-3, 0.05, epochs),
        ("vit_pooled", lambda: models.build_vit_spt(**pooled, shifted=False, name="vit_pooled"), 1e-3, 0.05,
         long_epochs),
        ("vit_spt", lambda: models.build_vit_spt(**pooled, name="vit_spt"), 1e-3, 0.05, long_epochs),
        ("refined_cnn", lambda: cnn.refined_cnn(), 3e-3, 0.0, epochs),  # lesson 1's recipe: Adam, peak 3e-3
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


def load(args: argparse.Namespace) -> Run:
    """The NEU data of the protocol (``with_test_split``), from ``$DEFECTLIB_NEU_DIR`` or the shared data."""
    from defectlib.config import settings
    from defectlib.neu import find_neu, with_test_split

    root = neu_root()
    print("start:", machine_load())
    seed = settings().seed
    data = with_test_split(find_neu(root, max_per_class=args.max_per_class))
    fit_data = with_validation_in_train(data) if args.final_fit else data
    return Run(args, data, fit_data, seed, args.seeds or [seed])


def train_from_scratch(run: Run, pipelines: tuple) -> None:
    """Lessons 1 and 3: every from-scratch model, once per seed."""
    from defectlib import cnn, vit as models

    for name, build, learning_rate, weight_decay, epochs in scratch_candidates(cnn, models, run.args.epochs,
                                                                               run.args.long_epochs):
        if not run.wanted(name):
            continue
        for run_seed in run.seeds:
            train_scratch_run(run, name, build, learning_rate, weight_decay, epochs, run_seed, pipelines)


def train_scratch_run(run: Run, name: str, build, learning_rate: float, weight_decay: float, epochs: int,
                      run_seed: int, pipelines: tuple) -> None:
    """One seed of one from-scratch model: its figures, with flips at test time; the first seed's in the table."""
    import keras

    from defectlib import vit_tools
    from defectlib.compare import train_and_record
    from defectlib.config import seed_everything

    train, val, test = pipelines
    seed_everything(run_seed)
    model = build()
    vit_tools.compile_transformer(model, epochs * len(train), learning_rate=learning_rate,
                               weight_decay=weight_decay)
    print(f"\n== {name}, seed {run_seed}: {model.count_params():,} parameters, {epochs} epochs, peak "
          f"learning rate {learning_rate:g}, weight decay {weight_decay:g} ({machine_load()})", flush=True)
    record, _ = train_and_record(name, model, train, val, epochs, test_ds=test, workdir=run.workdir, verbose=2)
    print(f"{name}, seed {run_seed}: validation {record['val accuracy']:.2%}, test "
          f"{record['test accuracy']:.2%}, {record['train time (s)']:.0f} s of training "
          f"({record['train CPU (s)']:.0f} s CPU)", flush=True)
    flips = flip_accuracy(model, test)
    print(f"{name}, seed {run_seed}: test with flips at test time {flips:.2%}", flush=True)
    run.runs.setdefault(name, []).append((run_seed, record["test accuracy"], record["train time (s)"], flips))
    if run_seed == run.seeds[0]:
        run.records.append(record)
    keras.backend.clear_session()


def two_phases(run: Run, name: str, model, real: bool, pipelines: tuple, unfreeze, note: str,
               features: str = "pool", split=None) -> None:
    """Head on features computed once, then (if ``unfreeze``) the top at a 100x lower rate; one measured row.

    Phase 2 trains above a cut on activations computed once, as lessons 2 and 3 do: ``split(model)``
    returns the two halves (``split_at`` for a CNN, ``split_vit`` for the ViT).
    """
    import keras

    from defectlib.compare import Stopwatch, measure
    from defectlib.transfer import feature_extractor, head_model
    from defectlib.vit import fit_cached

    train_ds, val_ds, test_ds = pipelines
    head_epochs, finetune_epochs = run.args.head_epochs, run.args.finetune_epochs
    clock = Stopwatch()
    with clock:
        fit_cached(feature_extractor(model, features), head_model(model, features), 1e-3, (train_ds, val_ds),
                   head_epochs, BATCH_SIZE)
    if unfreeze is not None:
        unfreeze(model)
        with clock:
            fit_cached(*split(model), 1e-5, (train_ds, val_ds), finetune_epochs, BATCH_SIZE)
    record = measure(name, model, val_ds, test_ds, clock=clock, real_weights=real, note=note, workdir=run.workdir,
                     epochs=head_epochs + (finetune_epochs if unfreeze else 0))
    print(f"{name}: {clock.wall:.0f} s of training; weights: {'ImageNet' if real else 'RANDOM'}", flush=True)
    run.records.append(record)
    keras.backend.clear_session()


def train_imagenet_cnns(run: Run) -> None:
    """Lesson 2: MobileNetV2 (head only) and ResNet50V2 (head, then its last residual block), in RGB."""
    from defectlib.config import pretrained, seed_everything, weights_file
    from defectlib.transfer import split_at, transfer_model, unfreeze_top

    rgb = None
    for name, finetune_layers in [("mobilenet_v2", 0), ("resnet50_v2", 13)]:
        if not run.wanted(name):
            continue
        rgb = rgb or run.pipelines("rgb")
        seed_everything(run.seed)
        print(f"\n== {name}: ImageNet base at {TRANSFER_SIZE[0]} px ({machine_load()})", flush=True)

        def build(weights, name=name):
            return transfer_model(name, image_size=TRANSFER_SIZE, input_shape=(200, 200, 3), weights=weights)

        try:
            model, real = pretrained(build, f"{name} ImageNet weights", file=weights_file(name, TRANSFER_SIZE[0]))
        except RuntimeError as error:
            print(f"{name}: no ImageNet weights here ({str(error)[:120]}...): random weights, no accuracy")
            model, real = build(None), False
        unfreeze = (lambda m, n=finetune_layers: unfreeze_top(m, n)) if finetune_layers else None
        two_phases(run, name, model, real, rgb, unfreeze,
                   "head + fine-tuned top" if finetune_layers else "frozen base, head only",
                   split=lambda m: split_at(m, "conv5_block2_out"))


def train_pretrained_vit(run: Run, pipelines: tuple) -> None:
    """Lesson 3: KerasHub's ViT-B/16, head then its last block."""
    if not run.wanted("vit_pretrained"):
        return
    import keras_hub

    from defectlib import vit as models, vit_tools
    from defectlib.config import seed_everything

    seed_everything(run.seed)
    print(f"\n== vit_pretrained: KerasHub {vit_tools.VIT_PRESET} ({machine_load()})", flush=True)
    try:
        model, real = vit_tools.pretrained_vit()
    except RuntimeError as error:
        print(f"vit_pretrained: no preset here ({str(error)[:120]}...): ViT-B/16 with random weights, "
              "no accuracy")
        backbone = keras_hub.models.ViTBackbone(**vit_tools.VIT_B16_CONFIG, name="vit_backbone")
        model, real = vit_tools.vit_classifier(backbone), False
    two_phases(run, "vit_pretrained", model, real, pipelines, lambda m: models.unfreeze_vit_top(m, 1),
               "ViT-B/16, head + fine-tuned top", features="class_token", split=models.split_vit)


def report(run: Run) -> None:
    """The seeds' summary, the comparison table and the recommendation."""
    from defectlib.compare import comparison_table, format_table, recommend

    args, data = run.args, run.data
    if len(run.seeds) > 1:
        print(f"\nfrom-scratch models over seeds {', '.join(map(str, run.seeds))} (test split):")
        print(seed_summary(run.runs))
    table = comparison_table(run.records)
    sizes = " / ".join(f"{len((run.fit_data if split == 'train' else data).split(split))}"
                       for split in ("train", "validation", "test"))
    print(f"\nNEU, {sizes} training / validation / test images ({data.root}"
          f"{f', at most {args.max_per_class} training images per class: a SMOKE RUN' if args.max_per_class else ''}"
          f"{', FINAL FIT: the validation images were trained on' if args.final_fit else ''}), {args.epochs} epochs "
          f"from scratch ({args.long_epochs} for vit_pooled and vit_spt), {args.head_epochs} + "
          f"{args.finetune_epochs} for pretrained models, {os.cpu_count()} CPU cores, one run:")
    print(format_table(table).to_string())
    if not args.final_fit:
        print("\n" + recommend(table))
    print_goal(run, table)


def print_goal(run: Run, table) -> None:
    """The goal of the best pure ViT (chosen on validation; every one trained after a final fit)."""
    final_fit = run.args.final_fit
    pure = [name for name in ("vit", "vit_augmented", "vit_small_patches", "vit_pooled", "vit_spt")
            if name in table.index]
    # A final fit leaves no held-out validation to choose on: then every pure ViT trained is checked.
    checked = pure if final_fit or not pure else [table.loc[pure, "val accuracy"].idxmax()]
    for name in checked:
        runs = run.runs[name]
        accuracy = sum(r[1] for r in runs) / len(runs)
        flips = sum(r[3] for r in runs) / len(runs)
        seconds = max(r[2] for r in runs)
        met = accuracy >= GOAL_ACCURACY and seconds <= GOAL_SECONDS
        print(f"goal (pure ViT, no convolutional stem{'' if final_fit else ', chosen on validation'}: at least "
              f"{GOAL_ACCURACY:.0%} on test, the mean over {len(runs)} seed(s), each run in at most "
              f"{GOAL_SECONDS} s of training): {'met' if met else 'NOT met'} ({name}: test {accuracy:.2%}, "
              f"{flips:.2%} with flips at test time; slowest run {seconds:.0f} s wall clock at this load)")


def main() -> None:
    args = parse_args()
    # The pipelines shuffle themselves; Keras warns at every fit that its own shuffle=True is ignored.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    run = load(args)
    pipelines = run.pipelines()
    if args.final_fit:
        print(f"FINAL FIT: training on train + validation, {len(run.fit_data.split('train'))} images; the validation "
              "accuracy below is on images the models trained on")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        run.workdir = workdir
        train_from_scratch(run, pipelines)
        train_imagenet_cnns(run)
        train_pretrained_vit(run, pipelines)
    print(f"\nend: {machine_load()}; {time.perf_counter() - start:.0f} s in all")
    if run.records:
        report(run)


if __name__ == "__main__":
    main()
