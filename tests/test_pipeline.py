"""Tests of the Severstal two-stage pipeline (defectlib.pipeline) and its models (defectlib.segmentation, lesson 4)."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defectlib.losses import dice_coefficient, focal_tversky_loss, kaggle_mean_dice, tversky_index
from defectlib.model_tools import CaffePreprocess
from defectlib.segmentation import defect_classifier, resunet, small_gate
from defectlib.images import load_severstal_images, resize_images
from defectlib.pipeline import (TwoStageSettings, choose_min_area, choose_threshold, clean_masks, full_size_masks,
                                predict_two_stage, threshold_summary, upsample)
from defectlib.submission import read_submission, score_submission, submission_table, table_masks, write_submission
from defectlib.rle import SEVERSTAL_SHAPE, rle_decode
from defectlib.errors import DataError
from defectlib.images import list_images
from defectlib.severstal import read_train_csv, split_table
from defectlib.synthetic import make_synthetic_severstal


def two_stage(ids, classifier, segmenter, *, images=None, images_dir=None, **settings):
    """``predict_two_stage`` with its settings given as keywords."""
    return predict_two_stage(ids, classifier, segmenter, TwoStageSettings(**settings), images=images,
                             images_dir=images_dir)

# --------------------------------------------------------------------------- the threshold


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), min_size=2, max_size=60),
       st.sampled_from([0.5, 0.8, 0.9, 0.99, 1.0]))
def test_choose_threshold_is_the_highest_that_reaches_the_recall(pairs, min_recall):
    labels = np.array([int(d) for d, _ in pairs])
    scores = np.array([s / 20 for _, s in pairs])  # few distinct values: ties are common
    if labels.sum() == 0:
        return
    threshold = choose_threshold(labels, scores, min_recall)
    recall = lambda t: ((scores >= t) & (labels == 1)).sum() / labels.sum()  # noqa: E731
    assert recall(threshold) >= min_recall
    higher = scores[scores > threshold]
    assert all(recall(t) < min_recall for t in higher)


def test_choose_threshold_on_validation_scores_and_summary():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(0.35 * labels + rng.normal(0.4, 0.2, 400), 0, 1)  # overlapping classes
    threshold = choose_threshold(labels, scores, 0.99)
    summary = threshold_summary(labels, scores, threshold)
    assert summary["recall"] >= 0.99
    assert summary["false_positive_rate"] > 0.3          # the price of finding nearly every defect
    assert threshold_summary(labels, scores, 0.5)["recall"] < 0.99
    with pytest.raises(ValueError, match="no defective image"):
        choose_threshold([0, 0], [0.1, 0.2])


# --------------------------------------------------------------------------- masks and submissions


def test_clean_masks_removes_small_regions_and_small_classes():
    p = np.zeros((20, 30, 4), np.float32)
    p[2:8, 2:8, 0] = 0.9        # 36 pixels
    p[15, 25, 0] = 0.9          # 1 pixel
    p[10:12, 10:12, 1] = 0.6    # 4 pixels
    p[12:14, 20:22, 1] = 0.6    # 4 more, elsewhere
    p[0:5, 20:25, 3] = 0.4      # below the threshold
    m = clean_masks(p, threshold=0.5, min_component=[10, 5, 0, 0])
    assert m.dtype == np.uint8
    assert m[..., 0].sum() == 36 and m[15, 25, 0] == 0
    assert m[..., 1].sum() == 0 and m[..., 3].sum() == 0
    by_area = clean_masks(p, threshold=0.5, min_area=[37, 8, 0, 0])    # total area per class
    assert by_area[..., 0].sum() == 37 and by_area[..., 1].sum() == 8
    assert clean_masks(p, threshold=0.5, min_area=[38, 9, 0, 0])[..., :2].sum() == 0
    both = clean_masks(p, threshold=0.5, min_component=2, min_area=37)  # specks go first, then 36 < 37
    assert both[..., 0].sum() == 0
    assert clean_masks(p, threshold=[0.5, 0.5, 0.5, 0.3])[..., 3].sum() == 25
    assert clean_masks(p[None], 0.5).shape == (1, 20, 30, 4)
    with pytest.raises(ValueError, match="one per class"):
        clean_masks(p, threshold=[0.5, 0.5])


def _clean_by_the_definition(p, threshold, min_area, min_component):
    """clean_masks written the slow, obvious way, with scikit-image's labelling (8-connected)."""
    from skimage.measure import label

    masks = np.zeros(p.shape, np.uint8)
    for k in range(p.shape[-1]):
        mask = p[..., k] >= threshold[k]
        regions = label(mask, connectivity=2)
        for r in range(1, regions.max() + 1):
            if (regions == r).sum() < min_component[k]:
                mask[regions == r] = False
        masks[..., k] = mask if mask.sum() >= min_area[k] else 0
    return masks


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_clean_masks_and_full_size_masks_agree_with_the_definition(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, (6, 9, 4)).astype(np.float32) ** rng.uniform(0.5, 4, 4).astype(np.float32)
    p[..., 3] = np.minimum(p[..., 3], 0.49)                       # a class that cannot reach 0.5
    threshold = rng.choice([0.3, 0.5, 0.7], 4)
    min_area, min_component = rng.integers(0, 30, 4), rng.integers(0, 6, 4)
    expected = _clean_by_the_definition(p, threshold, min_area, min_component)
    np.testing.assert_array_equal(clean_masks(p, threshold, min_area, min_component), expected)
    big = upsample(p, (24, 36))                                   # bilinear, 4x: the pipeline's step
    np.testing.assert_array_equal(full_size_masks(p, (24, 36), threshold, 4 * min_area, min_component),
                                  _clean_by_the_definition(big, threshold, 4 * min_area, min_component))


def test_full_size_masks_keeps_a_class_whose_maximum_is_exactly_the_threshold():
    p = np.zeros((4, 4, 2), np.float32)
    p[1:3, 1:3, 0] = 0.5                               # exactly the threshold: the middle pixels are set
    p[1:3, 1:3, 1] = np.nextafter(np.float32(0.5), np.float32(0))  # just below: nothing
    m = full_size_masks(p, (8, 8), threshold=0.5)
    np.testing.assert_array_equal(m, clean_masks(upsample(p, (8, 8)), 0.5))
    assert m[..., 0].any() and not m[..., 1].any()
    with pytest.raises(ValueError, match="one .height, width, classes. map"):
        full_size_masks(p[None], (8, 8))


def test_choose_min_area_picks_each_class_on_its_own_and_the_smallest_of_ties():
    truth = np.zeros((3, 8, 8, 2), "uint8")
    p = np.zeros((3, 8, 8, 2))
    truth[0, :4, :4, 0] = 1; p[0, :4, :4, 0] = 0.9      # class 1: a true 16-pixel defect...
    p[1, 0, :5, 0] = 0.9                                # ...and a 5-pixel false alarm: 6 to 16 are best
    truth[2, :, :2, 1] = 1; p[2, :, :2, 1] = 0.9        # class 2: one true 16-pixel defect, no false alarm
    assert choose_min_area(truth, p, candidates=[20, 0, 6, 10]) == [6, 0]
    chosen = [clean_masks(p, min_area=a) for a in (0, 6)]
    assert kaggle_mean_dice(truth[..., :1], chosen[1][..., :1]) > kaggle_mean_dice(truth[..., :1], chosen[0][..., :1])
    with pytest.raises(ValueError, match="one shape"):
        choose_min_area(truth, p[:2], candidates=[0])
    with pytest.raises(ValueError, match="no candidate"):
        choose_min_area(truth, p, candidates=[])


def test_submission_csv_round_trips_through_the_rle_decoder(tmp_path: Path):
    rng = np.random.default_rng(3)
    ids = ["a.jpg", "b.jpg", "c.jpg"]
    probabilities = rng.random((3, 16, 100, 4)).astype(np.float32) ** 3
    probabilities[2] = 0                                    # an image without defects
    masks = [clean_masks(upsample(p, SEVERSTAL_SHAPE), 0.5, min_component=30) for p in probabilities]
    table = submission_table(ids, masks)
    assert set(table["ImageId"]) == {"a.jpg", "b.jpg"}
    nothing = submission_table(ids, [np.zeros((4, 4, 4), np.uint8)] * 3)
    assert nothing.empty and read_submission(write_submission(nothing, tmp_path / "empty.csv")).equals(nothing)
    for include_empty in (False, True):
        table = submission_table(ids, masks, include_empty=include_empty)
        path = write_submission(table, tmp_path / f"submission_{include_empty}.csv")
        back = read_submission(path)
        assert back.equals(table)
        assert len(back) == (12 if include_empty else int(sum(m.any(axis=(0, 1)).sum() for m in masks)))
        for image_id, expected in zip(ids, masks):
            np.testing.assert_array_equal(table_masks(back, image_id), expected)
            rows = back[back["ImageId"] == image_id]
            for cls, rle in zip(rows["ClassId"], rows["EncodedPixels"]):
                np.testing.assert_array_equal(rle_decode(rle), expected[..., cls - 1])


def test_score_submission_is_the_kaggle_metric_of_the_decoded_masks():
    rng = np.random.default_rng(5)
    ids = [f"{i}.jpg" for i in range(4)]
    shape = (32, 48)
    truth_masks = [(rng.random((*shape, 4)) < 0.02) * (rng.random(4) < 0.4) for _ in ids]
    pred_masks = [(rng.random((*shape, 4)) < 0.02) * (rng.random(4) < 0.4) for _ in ids]
    truth, submission = submission_table(ids, truth_masks), submission_table(ids, pred_masks)
    expected = kaggle_mean_dice(np.stack(truth_masks), np.stack(pred_masks))
    assert score_submission(truth, submission, ids, shape) == pytest.approx(expected, rel=1e-12)
    empty = submission_table(ids, [np.zeros((*shape, 4), np.uint8)] * 4)
    empty_pairs = sum(int((~m.any(axis=(0, 1))).sum()) for m in truth_masks)
    assert score_submission(truth, empty, ids, shape) == pytest.approx(empty_pairs / 16)
    assert score_submission(truth, truth, ids, shape) == 1.0


# --------------------------------------------------------------------------- the gate


class Recorder:
    """A stub model that reads each image's id from its first pixel and records what it was given."""

    def __init__(self, output):
        self.output, self.calls = output, []

    def __call__(self, x):
        seen = [int(round(v)) for v in np.asarray(x)[:, 0, 0, 0]]
        self.calls.append(seen)
        return self.output(seen)


def test_only_images_at_or_above_the_threshold_are_segmented():
    n = 11
    ids = [f"{i:03d}.jpg" for i in range(n)]
    images = np.zeros((n, 8, 16, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)                     # the id, readable after any non-resizing copy
    scores = np.linspace(0, 1, n)                          # image i scores i / 10
    classifier = Recorder(lambda seen: scores[seen][:, None])
    segmenter = Recorder(lambda seen: np.full((len(seen), 8, 16, 4), 0.9, np.float32))
    table, stats = two_stage(ids, classifier, segmenter, threshold=0.7, images=images, batch_size=4,
                                     out_shape=(8, 16))
    above = [ids[i] for i in range(n) if scores[i] >= 0.7]
    assert stats.segmented_ids == above and stats.n_segmented == 4
    assert classifier.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]  # every image is scored
    assert segmenter.calls == [[7, 8, 9, 10]]         # only those above go on, gathered into full batches
    np.testing.assert_allclose(stats.scores, scores)
    assert sorted(set(table["ImageId"])) == above and len(table) == 4 * len(above)
    assert set(stats.seconds) == {"load", "classify", "segment", "postprocess", "total"}

    every, stats_all = two_stage(ids, None, segmenter, images=images, batch_size=4, gate=False,
                                         out_shape=(8, 16))
    assert stats_all.segmented_ids == ids and stats_all.scores is None
    assert segmenter.calls[-3:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert len(every) == 4 * n

    # read and classified 8 at a time, segmented in full batches of 4: the same table
    chunked, stats_chunked = two_stage(ids, classifier, segmenter, threshold=0.7, images=images, batch_size=4,
                                               read_batch_size=8, out_shape=(8, 16))
    assert classifier.calls[-2:] == [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10]]
    assert segmenter.calls[-1:] == [[7, 8, 9, 10]] and stats_chunked.segmented_ids == above
    pd.testing.assert_frame_equal(chunked, table)
    with pytest.raises(ValueError, match="read_batch_size=0"):
        two_stage(ids, classifier, segmenter, images=images, read_batch_size=0, out_shape=(8, 16))

    nothing, stats_none = two_stage(ids, classifier, segmenter, threshold=2.0, images=images,
                                            out_shape=(8, 16), include_empty=True)
    assert stats_none.n_segmented == 0 and len(nothing) == 4 * n and (nothing["EncodedPixels"] == "").all()


def test_the_gate_resizes_each_image_once_when_both_networks_take_one_size(monkeypatch):
    import defectlib.pipeline as pipeline

    resized = []                                          # how many images each call of resize_images got
    monkeypatch.setattr(pipeline, "resize_images",
                        lambda images, size: resized.append(len(images)) or resize_images(images, size))
    images = np.random.default_rng(0).uniform(0, 255, (6, 16, 32, 3)).astype(np.float32)
    ids = [f"{i}.jpg" for i in range(6)]
    seen = []
    segmenter = lambda x: seen.append(x.copy()) or np.full((len(x), *x.shape[1:3], 4), 0.9, np.float32)  # noqa: E731
    options = dict(images=images, batch_size=4, out_shape=(16, 32), classifier_size=(8, 16))
    two_stage(ids, lambda x: np.ones(len(x)), segmenter, segmenter_size=(8, 16), **options)
    assert resized == [4, 2]                              # one resize per batch, shared by the two networks
    np.testing.assert_array_equal(np.concatenate(seen), resize_images(images, (8, 16)))
    resized.clear()
    two_stage(ids, lambda x: np.ones(len(x)), segmenter, segmenter_size=(4, 8), **options)
    assert resized == [4, 4, 2, 2]                        # two sizes: each network's own


def test_files_are_read_once_at_the_networks_size_as_in_training(monkeypatch, tmp_path: Path):
    import defectlib.pipeline as pipeline

    root = make_synthetic_severstal(tmp_path / "s", n_images=6, seed=2, height=64, width=400)
    ids, folder = list_images(root / "train_images"), root / "train_images"
    monkeypatch.setattr(pipeline, "resize_images", lambda *a: pytest.fail("resized again"))
    seen = []
    segmenter = lambda x: seen.append(x.copy()) or np.full((len(x), *x.shape[1:3], 4), 0.9, np.float32)  # noqa: E731
    options = dict(images_dir=folder, batch_size=4, out_shape=(64, 400), segmenter_size=(32, 200))
    two_stage(ids, lambda x: np.ones(len(x)), segmenter, classifier_size=(32, 200), **options)
    np.testing.assert_array_equal(np.concatenate(seen), load_severstal_images(folder, ids, (32, 200), (64, 400)))
    seen.clear()
    two_stage(ids, None, segmenter, gate=False, **options)
    np.testing.assert_array_equal(np.concatenate(seen), load_severstal_images(folder, ids, (32, 200), (64, 400)))


def test_a_file_of_another_size_is_named(tmp_path: Path):
    root = make_synthetic_severstal(tmp_path / "s", n_images=3, seed=2, height=64, width=400)
    ids, folder = list_images(root / "train_images"), root / "train_images"
    cv2.imwrite(str(folder / ids[1]), np.zeros((64, 384, 3), np.uint8))
    with pytest.raises(DataError, match=f"{ids[1]}: 64x384 pixels, expected 64x400"):
        load_severstal_images(folder, ids, (32, 200), source_size=(64, 400))
    with pytest.raises(DataError, match=f"{ids[0]}: 64x400 pixels, expected 256x1600"):  # the first one named
        load_severstal_images(folder, ids, (32, 200))
    assert load_severstal_images(folder, [], (32, 200)).shape == (0, 32, 200, 3)


def test_pipeline_with_keras_models_on_image_files(tmp_path: Path):
    keras.utils.set_random_seed(0)
    root = make_synthetic_severstal(tmp_path / "s", n_images=5, seed=1, height=64, width=400)
    ids = list_images(root / "train_images")
    classifier = keras.Sequential([keras.Input((32, 200, 3)), keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(1, activation="sigmoid")])
    segmenter = resunet((32, 192, 3), base_filters=2)
    table, stats = two_stage(ids, classifier, segmenter, threshold=0.0, images_dir=root / "train_images",
                                     batch_size=5, mask_threshold=0.0, out_shape=(64, 400))
    assert stats.n_images == 5 and stats.n_segmented == 5                 # threshold 0: everything goes on
    assert stats.scores.shape == (5,) and np.all((stats.scores >= 0) & (stats.scores <= 1))
    assert len(table) == 20 and table_masks(table, ids[0], (64, 400)).all()  # mask threshold 0: all pixels set
    truth = read_train_csv(root / "train.csv", (64, 400))
    assert 0.0 <= score_submission(truth, table, ids, (64, 400)) <= 1.0


# --------------------------------------------------------------------------- the split of small data sets


def _labelled(n_clean: int, n_defective: int) -> pd.DataFrame:
    return pd.DataFrame({"ImageId": [f"{i:03d}.jpg" for i in range(n_clean + n_defective)],
                         "label": [0] * n_clean + [1] * n_defective})


@pytest.mark.parametrize("n_clean, n_defective", [(3, 17), (1, 19), (2, 2), (3, 1), (5, 5)])
def test_a_table_too_small_to_stratify_is_split_label_by_label_with_a_warning(n_clean, n_defective):
    table = _labelled(n_clean, n_defective)
    with pytest.warns(UserWarning, match=f"label 0: {n_clean} rows, label 1: {n_defective} rows.*mean little"):
        parts = split_table(table, seed=0)
    assert sorted(pd.concat(parts)["ImageId"]) == table["ImageId"].tolist()   # nothing lost, nothing twice
    assert all(len(part) > 0 and part["ImageId"].is_monotonic_increasing for part in parts)
    assert set(parts[0]["label"]) == {0, 1}                                   # training sees both labels
    for label, n in [(0, n_clean), (1, n_defective)]:                         # a label with 3 rows reaches every part
        assert all((part["label"] == label).any() for part in parts) or n < 3
    with pytest.warns(UserWarning):
        again = split_table(table, seed=0)
    assert all(a.equals(b) for a, b in zip(parts, again))


def test_the_real_sample_shape_splits_13_4_3_with_a_defect_free_image_in_each_part():
    with pytest.warns(UserWarning, match="too few for a stratified split"):
        parts = split_table(_labelled(3, 17), seed=42)
    assert [len(p) for p in parts] == [13, 4, 3] and [int((p["label"] == 0).sum()) for p in parts] == [1, 1, 1]


def test_a_large_enough_table_is_split_by_sklearn_without_a_warning(recwarn):
    parts = split_table(_labelled(40, 60), seed=0)
    assert [len(p) for p in parts] == [70, 15, 15] and not [w for w in recwarn if w.category is UserWarning]


@pytest.mark.parametrize("n_clean, n_defective", [(1, 2), (0, 2), (1, 1)])
def test_a_table_that_cannot_fill_three_parts_is_a_data_error_naming_the_counts(n_clean, n_defective):
    with pytest.raises(DataError, match=f"cannot split {n_clean + n_defective} rows.*add images"):
        split_table(_labelled(n_clean, n_defective), seed=0)


# --------------------------------------------------------------------------- the models


def test_classifier_base_is_really_frozen():
    model = defect_classifier((32, 32, 3), weights=None)
    base = model.get_layer("base")
    assert base.trainable is False
    assert base.trainable_weights == [] and all(not layer.trainable for layer in base.layers)
    head = {w.path.split("/")[0] for w in model.trainable_weights}
    assert head == {"hidden", "defect"}
    assert 0 < model.count_params() - sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_small_gate_finds_a_small_mark_anywhere_and_loads_in_safe_mode(tmp_path: Path):
    rng = np.random.default_rng(0)
    x = rng.normal(128, 8, (160, 32, 96, 3)).astype("float32")
    y = np.arange(160) % 2                                 # every other image has a dark 4x4 mark, anywhere
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 28), rng.integers(0, 92)
        x[i, r:r + 4, c:c + 4] -= 60
    keras.utils.set_random_seed(0)
    model = small_gate((32, 96, 3))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(x[:128], y[:128], batch_size=16, epochs=15, verbose=0)
    held_out = model.predict(x[128:], verbose=0).ravel()
    assert np.mean((held_out >= 0.5) == y[128:]) >= 0.9    # 32 images it never saw
    path = tmp_path / "gate.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(again.predict(x[128:], verbose=0).ravel(), held_out, rtol=1e-5, atol=1e-6)


def test_caffe_preprocess_is_resnet50_preprocessing_and_loads_in_safe_mode(tmp_path: Path):
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(CaffePreprocess()(x)), expected, rtol=1e-6)
    model = keras.Sequential([keras.Input((4, 4, 3)), CaffePreprocess(name="preprocess")])
    model.save(tmp_path / "p.keras")
    again = keras.saving.load_model(tmp_path / "p.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x)), expected, rtol=1e-6)


def test_resunet_shape_range_and_safe_mode_round_trip(tmp_path: Path):
    keras.utils.set_random_seed(0)
    model = resunet((16, 32, 3), num_classes=4, base_filters=2)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=focal_tversky_loss(gamma=0.8),
                  metrics=[tversky_index, dice_coefficient])
    model.optimizer.build(model.trainable_variables)  # as after training, so its state is saved too
    x = np.random.default_rng(1).uniform(0, 255, (2, 16, 32, 3)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, 16, 32, 4) and y.min() >= 0 and y.max() <= 1
    model.save(tmp_path / "resunet.keras")
    again = keras.saving.load_model(tmp_path / "resunet.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), y, rtol=1e-5, atol=1e-6)
    assert again.loss.get_config()["gamma"] == 0.8
    with pytest.raises(ValueError, match="multiples of 16"):
        resunet((32, 200, 3))


# --------------------------------------------------------------------------- the real images


@pytest.mark.real_data
def test_real_images_go_through_the_prediction_path(shared_data: Path):
    images_dir = shared_data / "severstal" / "train_images"
    if not images_dir.is_dir():
        pytest.skip(f"no {images_dir}")
    ids = list_images(images_dir)[:3]
    classifier = keras.Sequential([keras.Input((32, 200, 3)), keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(1, activation="sigmoid")])
    table, stats = two_stage(ids, classifier, resunet((32, 192, 3), base_filters=2), threshold=0.0,
                                     images_dir=images_dir, mask_threshold=0.0, include_empty=True)
    assert stats.n_segmented == 3 and len(table) == 12
    assert table_masks(table, ids[0]).shape == (*SEVERSTAL_SHAPE, 4)
    assert isinstance(table, pd.DataFrame)
