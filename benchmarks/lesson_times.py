"""Run the lessons as a student does, in full mode, and time them: wall time per lesson and its slowest cells.

Each notebook runs top to bottom in a fresh kernel (nbclient, like "Run all" in Jupyter or Colab) with
``DEFECTLIB_FAST=0`` and the real NEU images of the shared data (``DEFECTLIB_NEU_DIR``). A lesson whose
other needs (pretrained weights, the Severstal data) this machine cannot meet is skipped and says why;
``--stand-in-weights`` gives lessons 2 to 4 random weights in the real architectures (``DEFECTLIB_WEIGHTS_DIR``):
a pass takes as long whatever the values, so their times count and their accuracies mean nothing.
``--severstal-stand-in`` gives lesson 4 a synthetic stand-in with the real set's 12,568 images of 1600 x 256
(``DEFECTLIB_SEVERSTAL_DIR``; written once into ``.defectlib-data/``), where its CPU plan draws its subset.
The budgets (issue 32) are for 2 AVX2 cores, where the seed LeNet's epoch takes 114 s; on another CPU
they scale by the seed LeNet's epoch time there, which this script measures first (``--no-scale`` skips it).

    python benchmarks/lesson_times.py                  # every lesson it can run here
    python benchmarks/lesson_times.py --lessons 1 5    # some of them
    python benchmarks/lesson_times.py --stand-in-weights --lessons 2 3
    python benchmarks/lesson_times.py --stand-in-weights --severstal-stand-in --lessons 4

The executed notebooks are written to a temporary folder, never into the repository, and the lessons get a fresh
data home there (``DEFECTLIB_DATA_HOME``): lesson 2 loads lesson 1's saved CNN only when lesson 1 ran before it in
the same run, and trains it otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from _common import REPO, argument_parser, machine_load, neu_root

LESSONS = sorted((REPO / "notebooks").glob("0*.ipynb"))
BUDGET_MINUTES = {"01": 20, "02": 20, "03": 20, "04": 30, "05": 20}   # on 2 AVX2 cores
REFERENCE_LENET_EPOCH = 114.0   # seconds, the seed LeNet's epoch on those cores
SEVERSTAL_IMAGES = 12568        # Kaggle's training set


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def lesson_needs(notebook: Path) -> tuple[str, ...]:
    """The needs a lesson names in its ``start_lesson(needs=...)`` call."""
    import ast

    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "start_lesson(" in source:
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "start_lesson":
                    return tuple(ast.literal_eval(node.keywords[0].value))
    raise ValueError(f"{notebook.name}: no start_lesson(needs=...) call")


def why_not_here(needs: tuple[str, ...]) -> str:
    """Why a full run cannot be had on this machine, or ``""``."""
    from defectlib.config import settings

    os.environ.pop("DEFECTLIB_FAST", None)
    reason = settings(needs=needs).demo_reason
    os.environ["DEFECTLIB_FAST"] = "0"
    return reason


def cell_seconds(cell) -> float:
    """A cell's execution time from the timestamps nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
            - dt.datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def slowest_cells(notebook, n: int = 5) -> list[tuple[int, float, str]]:
    """``(cell index, seconds, first line)`` of the ``n`` slowest code cells, slowest first."""
    timed = [(i, cell_seconds(cell), cell.source.strip().splitlines()[0] if cell.source.strip() else "")
             for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    return sorted(timed, key=lambda row: -row[1])[:n]


def run_lesson(path: Path, out_dir: Path, timeout: int) -> tuple[float, object, str]:
    """Execute one lesson; return its wall seconds, the executed notebook and the first error (or "")."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(out_dir)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, out_dir / path.name)
    errors = [f"cell {i}: {o['ename']}: {o['evalue'][:200]}" for i, cell in enumerate(notebook.cells)
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    return seconds, notebook, errors[0] if errors else ""


def lenet_epoch_seconds() -> float:
    """Seconds of one epoch of lesson 1's seed LeNet (255x255 RGB, batch 32, with validation), traced beforehand."""
    import keras

    from defectlib.cnn import lenet
    from defectlib.config import start_lesson
    from defectlib.neu import find_neu, neu_datasets, with_test_split

    start_lesson(needs=("neu",))
    train, val = neu_datasets(with_test_split(find_neu()), color="rgb", batch_size=32)
    model = lenet(input_shape=(200, 200, 3), image_size=(255, 255))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(train.take(2), validation_data=val.take(2), epochs=1, verbose=0)   # traces both steps: not timed
    start = time.perf_counter()
    model.fit(train, validation_data=val, epochs=1, verbose=0)
    return time.perf_counter() - start


def stand_in_weights(folder: Path) -> Path:
    """Random weights of the real architectures, saved where ``DEFECTLIB_WEIGHTS_DIR`` looks: for timing only."""
    import keras
    import keras_hub

    from defectlib.config import keras3_name, weights_file
    from defectlib.vit_tools import VIT_B16_CONFIG, VIT_PRESET

    for name, build in [("mobilenet_v2", keras.applications.MobileNetV2), ("resnet50_v2", keras.applications.ResNet50V2),
                        ("resnet50", keras.applications.ResNet50)]:
        base = build(include_top=False, weights=None, input_shape=(224, 224, 3))
        base.save_weights(folder / keras3_name(weights_file(name)))
    keras_hub.models.ViTBackbone(**VIT_B16_CONFIG, name="vit_backbone").save_to_preset(folder / VIT_PRESET)
    return folder


def report(rows: list[dict], scale: float | None) -> None:
    """One line per lesson against its budget, then each lesson's slowest cells."""
    print(f"\n{'lesson':<28} {'wall time':>10} {'budget here':>12}  verdict")
    for row in rows:
        if row.get("skipped"):
            print(f"{row['name']:<28} {'skipped':>10} {'':>12}  {row['skipped']}")
            continue
        budget = BUDGET_MINUTES[row["name"][:2]] * 60 * (scale if scale else 1.0)
        verdict = "within" if row["seconds"] <= budget else "OVER"
        print(f"{row['name']:<28} {row['seconds'] / 60:>8.1f} m {budget / 60:>10.1f} m  {verdict}"
              + (f"; FAILED at {row['error']}" if row["error"] else ""))
    for row in rows:
        if not row.get("skipped"):
            print(f"\n{row['name']}: slowest cells (index, seconds, first line); load {row['load']}")
            for index, seconds, first in row["slowest"]:
                print(f"  {index:>3} {seconds:>8.1f} s  {first[:90]}")


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--lessons", nargs="*", default=[], help="lesson numbers, e.g. 1 5 (default: all)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take")
    parser.add_argument("--no-scale", action="store_true", help="do not measure the seed LeNet's epoch")
    parser.add_argument("--stand-in-weights", action="store_true",
                        help="random weights of the real architectures for lessons 2 to 4: times only")
    parser.add_argument("--severstal-stand-in", action="store_true",
                        help=f"lesson 4 on a synthetic stand-in of {SEVERSTAL_IMAGES:,} full-size images: times only")
    args = parser.parse_args()
    os.environ.update(DEFECTLIB_FAST="0", DEFECTLIB_NEU_DIR=str(neu_root()), TF_CPP_MIN_LOG_LEVEL="2")
    print(f"CPU: {cpu_model()}; {machine_load()}")
    scale = None
    if not args.no_scale:
        epoch = lenet_epoch_seconds()
        scale = epoch / REFERENCE_LENET_EPOCH
        print(f"seed LeNet epoch here: {epoch:.1f} s (reference {REFERENCE_LENET_EPOCH:.0f} s): budgets x {scale:.2f}")
    chosen = [p for p in LESSONS if not args.lessons or any(p.name.startswith(f"{int(n):02d}") for n in args.lessons)]
    out_dir = Path(tempfile.mkdtemp(prefix="lesson-times-"))
    # A fresh data home: a lesson finds another lesson's saved model only when that lesson ran in this run.
    os.environ["DEFECTLIB_DATA_HOME"] = str(out_dir / "data-home")
    if args.stand_in_weights:
        folder = stand_in_weights(Path(tempfile.mkdtemp(prefix="stand-in-weights-")))
        os.environ["DEFECTLIB_WEIGHTS_DIR"] = str(folder)
        print(f"STAND-IN weights in {folder}: random values in the real architectures; times count, accuracies do not")
    if args.severstal_stand_in:
        from defectlib.synthetic import make_synthetic_severstal

        folder = REPO / ".defectlib-data" / f"severstal-stand-in-{SEVERSTAL_IMAGES}"
        start = time.perf_counter()
        os.environ["DEFECTLIB_SEVERSTAL_DIR"] = str(make_synthetic_severstal(folder, n_images=SEVERSTAL_IMAGES))
        print(f"SEVERSTAL STAND-IN in {folder} ({time.perf_counter() - start:.0f} s): synthetic images; times count, "
              "scores do not")
    rows = []
    for path in chosen:
        name, reason = path.stem, why_not_here(lesson_needs(path))
        if reason:
            rows.append({"name": name, "skipped": f"no full run here: {reason}"})
            print(f"{name}: skipped ({reason})", flush=True)
            continue
        print(f"{name}: running ({machine_load()})", flush=True)
        seconds, notebook, error = run_lesson(path, out_dir, args.timeout)
        rows.append({"name": name, "seconds": seconds, "error": error, "slowest": slowest_cells(notebook),
                     "load": machine_load().split(", ", 1)[1]})
        print(f"{name}: {seconds:.0f} s", flush=True)
    report(rows, scale)
    print(f"\nexecuted notebooks: {out_dir}")


if __name__ == "__main__":
    main()
