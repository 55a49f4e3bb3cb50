"""The course's from-scratch classifiers on the real NEU data, trained in one run, in one comparison table.

Models: lesson 1's refined CNN (``defectlib.cnn.refined_cnn``, when it exists) and
lesson 3's transformers: the ViT from scratch (20x20 patches), the same with
augmentation, the ViT with a convolutional stem, and the hybrid (residual CNN stem +
attention). All read the same in-memory pipeline (``neu_datasets``, native 200x200
grayscale) and are measured by ``defectlib.compare`` the same way: validation accuracy
after the last epoch, training time (wall clock, and the process's CPU time, which
other work on the machine affects much less), parameters, size of the ``.keras`` file
(without optimizer state) and images per second at batch 32 (after a warm-up, median
of five timed runs). The ViT with 10x10 patches (400 tokens) is left out by default:
on a CPU it takes several times longer than all the others together (add it with
``MODELS_ONLY``). The pretrained KerasHub ViT is tried last and skipped, with the
reason, when its weights cannot be downloaded.

Run: ``python benchmarks/models.py``. Data: ``$DEFECTLIB_NEU_DIR``, else
``../shared/data/NEU-DET`` beside the repository; without it the script says so and
exits 0. ``MODELS_EPOCHS`` (default 20) sets the epochs of every from-scratch model,
``MODELS_ONLY`` a comma-separated subset of names. Seeded (``DEFECTLIB_SEED``). Other
work on the machine slows the timings: the load average is printed before and after.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DEFECTLIB_FAST"] = "0"  # always the whole data set and the full recipe

from _common import machine_load, require, shared_data  # noqa: E402

EPOCHS = int(os.environ.get("MODELS_EPOCHS", "20"))
HEAD_EPOCHS = 5  # pretrained ViT: only its new head is trained
BATCH_SIZE = 32
VIT_SIZE = {"hidden_dim": 64, "num_heads": 4, "num_layers": 4, "mlp_dim": 128}  # as in the lesson
GOAL_ACCURACY, GOAL_SECONDS = 0.97, 600  # best transformer or hybrid: at least 97 % in at most 10 minutes


def candidates(models) -> list[tuple[str, object, float, float]]:
    """(name, builder, peak learning rate, weight decay) of every from-scratch model, in table order."""
    out = []
    if hasattr(cnn, "refined_cnn"):  # lesson 1's recipe: Adam (AdamW without decay), peak 3e-3
        out.append(("refined_cnn", lambda: cnn.refined_cnn(), 3e-3, 0.0))
    else:
        print("lesson 1's refined_cnn is not in defectlib.cnn: left out")
    out += [
        ("vit", lambda: models.vit(patch_size=20, **VIT_SIZE, name="vit"), 1e-3, 0.05),
        ("vit_augmented", lambda: models.vit(patch_size=20, augment=True, **VIT_SIZE, name="vit_augmented"),
         1e-3, 0.05),
        ("vit_small_patches", lambda: models.vit(patch_size=10, augment=True, **VIT_SIZE, name="vit_small_patches"),
         1e-3, 0.05),
        ("vit_conv_stem", lambda: models.vit(patch_size=20, conv_stem=True, augment=True, **VIT_SIZE,
                                             name="vit_conv_stem"), 1e-3, 0.05),
        ("hybrid", lambda: models.hybrid(), 2e-3, 0.05),
    ]
    return out


def main() -> None:
    root = require(Path(os.environ.get("DEFECTLIB_NEU_DIR") or shared_data() / "NEU-DET"))

    import keras

    from defectlib import cnn, vit as models
    from defectlib.compare import comparison_table, format_table, recommend, train_and_record
    from defectlib.config import seed_everything, settings
    from defectlib.neu import find_neu, neu_datasets

    only = {n.strip() for n in os.environ.get("MODELS_ONLY", "").split(",") if n.strip()}
    default_skip = {"vit_small_patches"}
    print("start:", machine_load())
    seed = settings().seed
    data = find_neu(root, max_per_class=None)
    train, val = neu_datasets(data, batch_size=BATCH_SIZE, seed=seed)
    records = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for name, build, learning_rate, weight_decay in candidates(models):
            if (only and name not in only) or (not only and name in default_skip):
                print(f"\n== {name}: skipped ({'not in MODELS_ONLY' if only else '400 tokens: too slow on a CPU'})")
                continue
            seed_everything(seed)
            model = build()
            models.compile_transformer(model, EPOCHS * len(train), learning_rate=learning_rate,
                                       weight_decay=weight_decay)
            print(f"\n== {name}: {model.count_params():,} parameters, {EPOCHS} epochs, peak learning rate "
                  f"{learning_rate:g}, weight decay {weight_decay:g} ({machine_load()})", flush=True)
            record, history = train_and_record(name, model, train, val, EPOCHS, workdir=workdir, verbose=2)
            print(f"{name}: validation accuracy {record['val accuracy']:.2%} (best epoch "
                  f"{max(history.history['val_accuracy']):.2%}), {record['train time (s)']:.0f} s", flush=True)
            records.append(record)
            keras.backend.clear_session()

        if not only or "vit_pretrained" in only:
            print("\n== vit_pretrained: KerasHub", models.VIT_PRESET, flush=True)
            try:
                model, _ = models.pretrained_vit()
            except RuntimeError as error:
                print(f"vit_pretrained: SKIPPED, its weights are not available here. {error}")
            else:
                models.compile_transformer(model, HEAD_EPOCHS * len(train), learning_rate=1e-3, weight_decay=0.0)
                record, _ = train_and_record("vit_pretrained", model, train, val, HEAD_EPOCHS, workdir=workdir,
                                             note="frozen ImageNet backbone", verbose=2)
                records.append(record)

    print(f"\nend: {machine_load()}; {time.perf_counter() - start:.0f} s in all")
    if not records:
        return
    table = comparison_table(records)
    print(f"\nNEU, {len(data.split('train'))} training / {len(data.split('validation'))} validation images "
          f"({data.root}), {os.cpu_count()} CPU cores, one run:")
    print(format_table(table).to_string())
    print("\n" + recommend(table))
    transformers = table[table.index.str.startswith(("vit", "hybrid")) & (table.index != "vit_pretrained")]
    if len(transformers):
        best = transformers["val accuracy"].idxmax()
        row = transformers.loc[best]
        met = row["val accuracy"] >= GOAL_ACCURACY and row["train time (s)"] <= GOAL_SECONDS
        print(f"goal (best from-scratch transformer or hybrid: at least {GOAL_ACCURACY:.0%} in at most "
              f"{GOAL_SECONDS} s of training): {'met' if met else 'NOT met'} ({best}: "
              f"{row['val accuracy']:.2%}, {row['train time (s)']:.0f} s wall clock at this load)")
        print(f"{best} used {row['train CPU (s)']:.0f} s of CPU time for its training: on an idle machine the wall "
              "clock is about that or less (both cores work in parallel), whatever the load was here.")


if __name__ == "__main__":
    main()
