"""Lesson 4 end to end on real Severstal data (issue 18): the notebook in fast mode on the 20-image sample.

``<shared data>/severstal-sample`` holds 20 real 1600x256 training images and their rows of
Kaggle's original wide ``train.csv`` (3 defect-free images; 19 masks: class 1 x2, class 3
x11, class 4 x6). The notebook runs top to bottom with ``DEFECTLIB_SEVERSTAL_DIR`` pointing at
it, in its own kernel (nbclient), with this checkout's ``defectlib``; then the checks below
run in the same kernel, on the notebook's own variables. Skipped without the shared data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "04_severstal_pipeline.ipynb"

# Run in the notebook's kernel after its last cell: what the notebook computed on the real sample.
CHECKS = """
from pathlib import Path
from defectlib.submission import read_submission

# The real sample, not the stand-in, with the counts of its SOURCES.md.
assert not data.synthetic and Path(data.images_dir).resolve() == Path(SAMPLE).resolve() / "train_images"
assert len(table) == 20 and int((table["label"] == 0).sum()) == 3 and len(annotations) == 19
assert per_class.tolist() == [2, 0, 11, 6] and classes_per_image.to_dict() == {0: 3, 1: 15, 2: 2}

# The exploration and overlay figures show real defects with their real masks.
assert len(examples) == 5 and example_images.shape[1:] == (256, 1600, 3)
for image_id, masks in zip(examples, example_masks):
    listed = set(annotations.loc[annotations["ImageId"] == image_id, "ClassId"])
    assert {k + 1 for k in range(4) if masks[..., k].any()} == listed
assert sum(bool(m.any()) for m in example_masks) == 4          # one image per present class, one with two, one clean

# The split of a too-small table: complete, disjoint, a defect-free image in every part.
ids = [set(t["ImageId"]) for t in (train_table, val_table, test_table)]
assert sum(map(len, ids)) == 20 and set.union(*ids) == set(table["ImageId"])
assert [len(t) for t in (train_table, val_table, test_table)] == [13, 4, 3]
assert all((t["label"] == 0).any() for t in (train_table, val_table, test_table))

# Stage 1: the base stayed frozen, the checkpoint is the file loaded back, every image was scored.
assert classifier.get_layer("base").trainable_weights == [] and cls_path.suffix == ".keras" and cls_path.is_file()
assert 1 <= len(cls_history.history["loss"]) <= CLS_EPOCHS
assert len(s_val) == len(val_table) and len(s_test) == len(test_table)
assert threshold_summary(y_val, s_val, threshold)["recall"] >= MIN_RECALL

# Stage 2: the ResUNet trained with the loss written on the page, and it loads back with it.
assert segmenter.loss is focal_tversky and np.isfinite(seg_history.history["loss"]).all()

# The pipeline: the gate sends exactly the images at or above the threshold; the file reads back.
assert stats.segmented_ids == [i for i, s in zip(test_ids, stats.scores) if s >= threshold]
np.testing.assert_allclose(stats.scores, s_test, atol=1e-4)
assert read_submission(submission_path).equals(submission.reset_index(drop=True))
assert stats_all.n_segmented == len(test_ids) and ((scores >= 0) & (scores <= 1)).all().all()
truth = np.stack([table_masks(annotations, i) for i in test_ids])
assert abs(kaggle_mean_dice(truth, np.zeros_like(truth)) - scores.loc["empty submission", "mean Dice"]) < 1e-4

# The exercises' solutions ran and their checks agreed.
assert len(solution_thresholds) == 4 and solution_speedup > 0
assert exercises.rle_encoding(solution_rle_encode, mask=truth[0, ..., 2]) == "correct"
"""


def test_lesson4_runs_end_to_end_on_the_real_sample(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    sample = shared_data / "severstal-sample"
    if not (sample / "train.csv").is_file():
        pytest.skip(f"no real Severstal sample at {sample}")
    monkeypatch.setenv("DEFECTLIB_SEVERSTAL_DIR", str(sample))
    monkeypatch.setenv("DEFECTLIB_FAST", "1")
    monkeypatch.setenv("DEFECTLIB_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(f"SAMPLE = {str(sample)!r}\n" + CHECKS))
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    try:
        client.execute()  # a failing cell (or check) raises CellExecutionError with its traceback
    finally:
        (tmp_path / "executed.ipynb").write_text(nbformat.writes(notebook))  # to read when it fails

    outputs = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in notebook.cells]
    text = "\n".join(outputs)
    assert "SYNTHETIC" not in text
    assert "too few for a stratified split" in text          # the fallback of the split said why
    assert "Only 4 validation and 3 test images" in text     # and the notebook says what it means
