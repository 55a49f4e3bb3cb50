"""The synthetic Severstal stand-in held against real masks: one table of mask statistics.

Columns: the lesson's stand-in (``make_synthetic_severstal``, 800 images, seed 0, as
``find_severstal`` makes it in full mode), the real sample (``<shared data>/severstal-sample``:
20 real images and Kaggle's original wide ``train.csv``), and ``<shared data>/severstal/test.csv``
(638 real masks of 633 defective images, so no defect-free share there). A last line gives the
image-level shares of Kaggle's whole training set from ``defect_and_no_defect.csv`` (one label-1
row per image and defect class). Cells are a count, a share, or ``median [p25, p75]`` over the
masks (``defectlib.severstal.mask_statistics``).

Run: ``python benchmarks/severstal_realism.py`` (about a minute on 2 CPU cores; ``--images`` for
a smaller stand-in).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from _common import argument_parser, machine_load, require, shared_data, timed

ROWS = ["masks (share)", "area (pixels)", "components", "x centre (share of width)", "rows spanned (share of height)"]


def cell(statistic: str, value: float, p25: float, p75: float) -> str:
    if math.isnan(value):
        return "-"
    if statistic in ("images", "masks"):
        return f"{value:.0f}"
    if math.isnan(p25):
        return f"{value:.1%}"
    digits = 0 if statistic.startswith(("area", "components")) else 2
    return f"{value:.{digits}f} [{p25:.{digits}f}, {p75:.{digits}f}]"


def formatted(stats) -> dict:
    """One column of text cells, in the order of the printed table."""
    import pandas as pd

    keys = [("images", "all"), ("defect-free images (share)", "all"), ("defective images with 2+ classes (share)", "all")]
    keys += [(name, cls) for cls in ["all", "1", "2", "3", "4"] for name in (["masks"] + ROWS)
             if (name, cls) != ("masks (share)", "all")]
    return pd.Series({f"{name} | class {cls}": cell(name, *stats.loc[(name, cls)]) for name, cls in keys})


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--images", type=int, default=800, help="images of the synthetic stand-in (the lesson's: 800)")
    args = parser.parse_args()

    import pandas as pd

    from defectlib.images import list_images
    from defectlib.severstal import mask_statistics, read_train_csv
    from defectlib.synthetic import make_synthetic_severstal

    print(f"machine: {machine_load()}")
    sample = require(shared_data() / "severstal-sample")
    test_csv = require(shared_data() / "severstal" / "test.csv")
    defects_csv = shared_data() / "severstal" / "defect_and_no_defect.csv"

    seconds, root = timed(make_synthetic_severstal, Path(tempfile.mkdtemp(prefix="severstal-realism-")) / "s",
                          n_images=args.images, seed=0)
    columns = {
        f"synthetic ({args.images}, seed 0)": mask_statistics(read_train_csv(root / "train.csv"),
                                                             list_images(root / "train_images")),
        "real sample (20)": mask_statistics(read_train_csv(sample / "train.csv"), list_images(sample / "train_images")),
        "real test.csv": mask_statistics(read_train_csv(test_csv)),
    }
    print(f"stand-in made in {seconds:.0f} s; statistics of {', '.join(columns)}\n")
    table = pd.DataFrame({name: formatted(stats) for name, stats in columns.items()})
    with pd.option_context("display.width", 200, "display.max_rows", 100, "display.max_colwidth", 40):
        print(table.to_string())
    if defects_csv.is_file():
        raw = pd.read_csv(defects_csv)
        per_image = raw.groupby("ImageID")["label"].agg(["size", "max"])
        defective = per_image[per_image["max"] == 1]
        print(f"\nKaggle's training set ({defects_csv.name}): {len(per_image)} images, "
              f"{(per_image['max'] == 0).mean():.1%} defect-free, {(defective['size'] >= 2).mean():.1%} of the "
              f"defective images with 2+ classes")
    print(f"machine at the end: {machine_load()}")


if __name__ == "__main__":
    main()
