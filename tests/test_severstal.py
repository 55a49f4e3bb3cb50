"""Tests of defectlib.severstal: finding the data, tables, image checks, pipelines, synthetic data."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from defectlib.errors import DataError
from defectlib.rle import rle_decode, rles_to_masks
from defectlib.images import check_images, list_images
from defectlib.severstal import (classifier_dataset, defect_table, find_severstal, read_defect_csv, read_train_csv,
                                 segmentation_dataset, split_table)
from defectlib.synthetic import SYNTHETIC_MARKER, make_synthetic_severstal


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 full-size synthetic images (about half a second to make)."""
    return make_synthetic_severstal(tmp_path_factory.mktemp("synthetic"), n_images=24, seed=0)


@pytest.fixture(scope="module")
def notes(synthetic: Path) -> pd.DataFrame:
    return read_train_csv(synthetic / "train.csv")


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Fast mode, a fresh data home and no Severstal folder set."""
    monkeypatch.setenv("DEFECTLIB_FAST", "1")
    monkeypatch.setenv("DEFECTLIB_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEFECTLIB_SEVERSTAL_DIR", raising=False)
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")
    return monkeypatch


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- synthetic data


def test_synthetic_data_is_deterministic(tmp_path: Path) -> None:
    a, b, c = (make_synthetic_severstal(tmp_path / n, n_images=6, seed=s, height=64, width=400) for n, s in [("a", 1), ("b", 1), ("c", 2)])
    assert (a / "train.csv").read_bytes() == (b / "train.csv").read_bytes()
    assert list_images(a / "train_images") == list_images(b / "train_images")
    for name in list_images(a / "train_images"):
        assert (a / "train_images" / name).read_bytes() == (b / "train_images" / name).read_bytes()
    assert (a / "train.csv").read_bytes() != (c / "train.csv").read_bytes()


def test_two_processes_making_the_same_stand_in_both_get_it_complete(tmp_path: Path) -> None:
    import multiprocessing

    root = tmp_path / "s"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        roots = pool.starmap(make_synthetic_severstal, [(root, 6, 1, 64, 400)] * 2)
    assert roots == [root, root] and [p.name for p in tmp_path.iterdir()] == ["s"]   # no temporary folder left
    assert len(list_images(root / "train_images")) == 6 and (root / "SYNTHETIC.txt").is_file()
    assert make_synthetic_severstal(root, n_images=99) == root                      # complete: reused, not rewritten
    assert len(list_images(root / "train_images")) == 6


def test_synthetic_data_has_the_real_format_and_all_cases(synthetic: Path, notes: pd.DataFrame) -> None:
    names = list_images(synthetic / "train_images")
    assert len(names) == 24 and all(re.fullmatch(r"[0-9a-f]{9}\.jpg", n) for n in names)
    assert (synthetic / "train.csv").read_text().splitlines()[0] == "ImageId,ClassId,EncodedPixels"
    image = cv2.imread(str(synthetic / "train_images" / names[0]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (256, 1600, 3) and image.dtype == np.uint8
    classes_per_image = notes.groupby("ImageId").size().reindex(names, fill_value=0)
    assert set(classes_per_image) == {0, 1, 2}
    assert 0.3 <= (classes_per_image == 0).mean() <= 0.5
    assert set(notes["ClassId"]) == {1, 2, 3, 4}
    assert notes["ClassId"].value_counts().idxmax() == 3
    assert all(rle_decode(r).sum() > 20 for r in notes["EncodedPixels"])


def test_synthetic_defects_are_visible(synthetic: Path, notes: pd.DataFrame) -> None:
    for image_id, _, rle in notes.itertuples(index=False):
        image = cv2.imread(str(synthetic / "train_images" / image_id), cv2.IMREAD_GRAYSCALE).astype(float)
        mask = rle_decode(rle).astype(bool)
        assert abs(image[mask].mean() - image[~mask].mean()) > 25


# ---------------------------------------------------------------------------- finding the data


def test_offline_without_a_folder_gives_the_synthetic_set_once(env, capsys: pytest.CaptureFixture[str]) -> None:
    data = find_severstal()
    out = capsys.readouterr().out
    assert data.source == "synthetic" and data.synthetic
    assert "SYNTHETIC" in out and "numbers are not real results" in out and "DEFECTLIB_OFFLINE" in out
    assert data.train_csv is not None and len(list_images(data.images_dir)) == 24
    first = (data.train_csv.stat().st_mtime_ns, sorted(data.images_dir.iterdir())[0].stat().st_mtime_ns)
    again = find_severstal()
    assert again == data
    assert (again.train_csv.stat().st_mtime_ns, sorted(again.images_dir.iterdir())[0].stat().st_mtime_ns) == first


def test_a_half_written_synthetic_set_is_made_again(env) -> None:
    data = find_severstal()
    (data.root / SYNTHETIC_MARKER).unlink()
    (data.images_dir / "junk.jpg").write_bytes(b"")
    again = find_severstal()
    assert (again.root / SYNTHETIC_MARKER).is_file()
    assert not (again.images_dir / "junk.jpg").exists()


def test_a_failed_kaggle_download_explains_credentials_and_rules(env, capsys: pytest.CaptureFixture[str]) -> None:
    import kagglehub

    def refuse(handle: str, *args: object, **kwargs: object) -> str:
        raise PermissionError(f"403 Forbidden for {handle}")

    env.setenv("DEFECTLIB_OFFLINE", "0")
    env.setattr(kagglehub, "competition_download", refuse)
    data = find_severstal()
    out = capsys.readouterr().out
    assert data.source == "synthetic"
    for text in ["kaggle.json", "KAGGLE_USERNAME", "KAGGLE_KEY", "kagglehub.login()", "rules", "severstal-steel-defect-detection", "403 Forbidden", "SYNTHETIC"]:
        assert text in out


def test_a_kaggle_download_is_used(env, synthetic: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import kagglehub

    env.setenv("DEFECTLIB_OFFLINE", "0")
    env.setattr(kagglehub, "competition_download", lambda handle, *a, **k: str(synthetic))
    data = find_severstal()
    assert (data.source, data.synthetic, data.root) == ("kaggle", False, synthetic)
    assert "kagglehub" in capsys.readouterr().out


def test_folder_from_argument_and_environment(env, synthetic: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert find_severstal(synthetic).source == "folder"
    env.setenv("DEFECTLIB_SEVERSTAL_DIR", str(synthetic))
    data = find_severstal()
    assert (data.source, data.train_csv) == ("folder", synthetic / "train.csv")
    assert "DEFECTLIB_SEVERSTAL_DIR" in capsys.readouterr().out


def test_a_bad_folder_is_named(env, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{tmp_path / 'nowhere'} does not exist"):
        find_severstal(tmp_path / "nowhere")
    env.setenv("DEFECTLIB_SEVERSTAL_DIR", str(tmp_path))
    with pytest.raises(DataError, match=f"{tmp_path} has no train_images"):
        find_severstal()


# ---------------------------------------------------------------------------- train.csv


def test_wide_and_long_formats_give_the_same_table(tmp_path: Path, synthetic: Path, notes: pd.DataFrame) -> None:
    names = list_images(synthetic / "train_images")
    rle = notes.set_index(["ImageId", "ClassId"])["EncodedPixels"]
    wide = pd.DataFrame(
        [(f"{n}_{c}", rle.get((n, c), np.nan)) for n in names for c in (1, 2, 3, 4)],
        columns=["ImageId_ClassId", "EncodedPixels"],
    )
    wide.to_csv(tmp_path / "wide.csv", index=False)
    assert len(wide) == 4 * len(names)
    pd.testing.assert_frame_equal(read_train_csv(tmp_path / "wide.csv"), notes)
    assert pd.api.types.is_string_dtype(notes["ImageId"]) and pd.api.types.is_string_dtype(notes["EncodedPixels"])
    assert notes["ClassId"].dtype == np.int64


LONG = "ImageId,ClassId,EncodedPixels\n"
WIDE = "ImageId_ClassId,EncodedPixels\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("ImageId,EncodedPixels\na.jpg,1 2\n", "expected the columns ImageId,ClassId,EncodedPixels"),
        (LONG + "a.jpg,1,1 2\na.jpg,5,1 2\n", r"line 3 \(a.jpg\): ClassId '5' is not one of 1, 2, 3, 4"),
        (LONG + "a.jpg,x,1 2\n", r"line 2 \(a.jpg\): ClassId 'x' is not one of"),
        (LONG + "a.jpg,1,1 2\n,2,1 2\n", "line 3: ImageId is empty"),
        (LONG + "a.jpg,1,\n", "line 2: EncodedPixels is empty for 'a.jpg'"),
        (LONG + "a.jpg,1,1 2\nb.jpg,1,1 2\na.jpg,1,5 2\n", r"line 4 \(a.jpg, class 1\): duplicate of line 2"),
        (LONG + "a.jpg,1,1 2\na.jpg,2,1 2 3\n", r"line 3 \(a.jpg, class 2\): RLE has an odd number"),
        (LONG + "a.jpg,3,0 2\n", r"line 2 \(a.jpg, class 3\): RLE run 1 \(start 0\): start 0 is below 1"),
        (LONG + "a.jpg,3,409600 2\n", "line 2 .*past the image"),
        (WIDE + "a.jpg_1,\na.jpg,1 2\n", "line 3: ImageId_ClassId 'a.jpg' is not '<image>_<class>'"),
        (WIDE + "a.jpg_1,\na.jpg_9,1 2\n", r"line 3 \(a.jpg\): ClassId '9' is not one of"),
        (WIDE + "a.jpg_1,\na.jpg_1,\n", r"line 3 \(a.jpg, class 1\): duplicate of line 2"),
        (WIDE + "a.jpg_1,1 5 3 1\n", r"line 2 \(a.jpg, class 1\): RLE run 2 \(start 3\): overlaps run 1"),
    ],
)
def test_bad_train_csv_raises_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "train.csv", text)
    with pytest.raises(DataError, match=f"(?s){re.escape(str(path))}.*{message}"):
        read_train_csv(path)


def test_every_bad_line_of_train_csv_is_named_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "train.csv", LONG + "a.jpg,5,1 2\nb.jpg,1,1 2 3\nb.jpg,1,1 2\n")
    with pytest.raises(DataError, match=r"(?s)3 problem\(s\).*line 2 \(a.jpg\): ClassId '5'.*line 3 \(b.jpg, class 1\): "
                                        r"RLE has an odd number.*line 4 \(b.jpg, class 1\): duplicate of line 3"):
        read_train_csv(path)


def test_missing_train_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="train.csv: file not found"):
        read_train_csv(tmp_path / "train.csv")


def test_header_only_train_csv_is_an_empty_table(tmp_path: Path) -> None:
    assert read_train_csv(write(tmp_path, "train.csv", LONG)).empty


# ---------------------------------------------------------------------------- defect tables


def test_defect_table_labels_every_image(synthetic: Path, notes: pd.DataFrame) -> None:
    table = defect_table(synthetic / "train_images", notes)
    assert table["ImageId"].tolist() == list_images(synthetic / "train_images")
    expected = [int(n in set(notes["ImageId"])) for n in table["ImageId"]]
    assert table["label"].tolist() == expected and 0 < sum(expected) < len(expected)


def test_defect_table_rejects_annotations_of_missing_images(synthetic: Path, notes: pd.DataFrame) -> None:
    extra = pd.concat([notes, pd.DataFrame({"ImageId": ["ffffffff0.jpg"], "ClassId": [1], "EncodedPixels": ["1 2"]})])
    with pytest.raises(DataError, match="ffffffff0.jpg"):
        defect_table(synthetic / "train_images", extra)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ImageID,label\na.jpg,1\nb.jpg,2\n", "line 3: label '2' is not 0 or 1"),
        ("ImageID,label\na.jpg,1\nb.jpg,0\na.jpg,0\n", r"a.jpg is listed with both labels 0 and 1 \(lines \[2, 4\]\)"),
        ("Image,label\na.jpg,1\n", "expected the columns ImageID,label"),
        ("", "the file is empty"),
    ],
)
def test_bad_defect_csv_raises(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "defects.csv", text)
    with pytest.raises(DataError, match=f"{re.escape(str(path))}.*{message}"):
        read_defect_csv(path)


def test_split_is_stratified_deterministic_and_complete() -> None:
    table = pd.DataFrame({"ImageId": [f"{i:09x}.jpg" for i in range(200)], "label": [0] * 80 + [1] * 120})
    train, val, test = split_table(table, seed=3)
    assert (len(train), len(val), len(test)) == (140, 30, 30)
    assert sorted(pd.concat([train, val, test])["ImageId"]) == sorted(table["ImageId"])
    for part in (train, val, test):
        assert part["label"].mean() == pytest.approx(0.6, abs=0.02)
        assert part["ImageId"].is_monotonic_increasing  # the table's order is kept
    again = split_table(table, seed=3)
    for a, b in zip((train, val, test), again):
        pd.testing.assert_frame_equal(a, b)
    assert split_table(table, seed=4)[2]["ImageId"].tolist() != test["ImageId"].tolist()


def test_split_of_too_few_rows_is_a_data_error() -> None:
    with pytest.raises(DataError, match="stratified by 'label'"):
        split_table(pd.DataFrame({"ImageId": list("abc"), "label": [0, 1, 1]}), seed=0)


# ---------------------------------------------------------------------------- image files


def test_bad_image_files_are_named(tmp_path: Path, synthetic: Path) -> None:
    good = synthetic / "train_images" / list_images(synthetic / "train_images")[0]
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:-500])
    cv2.imwrite(str(tmp_path / "small.jpg"), np.zeros((256, 1000, 3), np.uint8))
    for name, message in [
        ("empty.jpg", "empty file"),
        ("text.jpg", "not a readable image"),
        ("cut.jpg", "truncated JPEG"),
        ("small.jpg", "image is 1000x256, expected 1600x256"),
        ("missing.jpg", "file not found"),
    ]:
        with pytest.raises(DataError, match=f"{re.escape(str(tmp_path / name))}: {message}"):
            check_images([good, tmp_path / name])
    check_images([tmp_path / "small.jpg"], size=None)  # any size is fine when asked


def test_datasets_check_the_images_first(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    table = pd.DataFrame({"ImageId": ["a.jpg"], "label": [1]})
    with pytest.raises(DataError, match="a.jpg: empty file"):
        classifier_dataset(tmp_path, table)
    with pytest.raises(DataError, match="a.jpg: empty file"):
        segmentation_dataset(tmp_path, table.assign(ClassId=1, EncodedPixels="1 2"), ["a.jpg"])


# ---------------------------------------------------------------------------- pipelines


def test_classifier_dataset_keeps_order_and_labels(synthetic: Path, notes: pd.DataFrame) -> None:
    table = defect_table(synthetic / "train_images", notes)
    ds = classifier_dataset(synthetic / "train_images", table, image_size=(64, 400), batch_size=8)
    batches = list(ds)
    images, labels = batches[0]
    assert images.shape == (8, 64, 400, 3) and images.dtype.name == "float32" and labels.dtype.name == "float32"
    assert 0 <= float(np.min(images)) and float(np.max(images)) <= 255 and float(np.max(images)) > 1
    assert np.concatenate([y.numpy() for _, y in batches]).tolist() == table["label"].tolist()


def test_severstal_pipelines_run_without_tf_data_autotuning(synthetic: Path, notes: pd.DataFrame) -> None:
    # With it on, lesson 4's ResUNet trained on one core of two in most epochs (41 s instead of 22 s).
    table = defect_table(synthetic / "train_images", notes)
    ids = table["ImageId"].tolist()[:4]
    for ds in [classifier_dataset(synthetic / "train_images", table, image_size=(16, 100), batch_size=4, shuffle=True),
               segmentation_dataset(synthetic / "train_images", notes, ids, (16, 100), batch_size=4)]:
        assert ds.options().autotune.enabled is False


def test_classifier_dataset_images_are_the_files_in_table_order(synthetic: Path, notes: pd.DataFrame) -> None:
    table = defect_table(synthetic / "train_images", notes).iloc[[5, 0, 17, 3]]
    images, _ = next(iter(classifier_dataset(synthetic / "train_images", table, batch_size=4)))
    for image, name in zip(images.numpy(), table["ImageId"]):
        bgr = cv2.imread(str(synthetic / "train_images" / name)).astype(np.float32)
        assert np.abs(image - bgr[..., ::-1]).mean() < 2  # JPEG decoders may differ by a level or so


def test_classifier_dataset_shuffles_when_asked(synthetic: Path, notes: pd.DataFrame) -> None:
    table = defect_table(synthetic / "train_images", notes)
    ds = classifier_dataset(synthetic / "train_images", table, image_size=(16, 100), batch_size=24, shuffle=True, seed=1)
    epoch_1, epoch_2 = (next(iter(ds))[0].numpy().mean(axis=(1, 2, 3)) for _ in range(2))
    plain = next(iter(classifier_dataset(synthetic / "train_images", table, image_size=(16, 100), batch_size=24)))[0]
    plain = plain.numpy().mean(axis=(1, 2, 3))
    np.testing.assert_allclose(np.sort(epoch_1), np.sort(plain), rtol=1e-5)
    assert not np.allclose(epoch_1, plain) and not np.allclose(epoch_1, epoch_2)


def test_segmentation_masks_are_the_decoded_rle_shrunk(synthetic: Path, notes: pd.DataFrame) -> None:
    ids = list_images(synthetic / "train_images")[::-1][:6]
    ds = segmentation_dataset(synthetic / "train_images", notes, ids, mask_size=(128, 800), batch_size=6)
    images, masks = next(iter(ds))
    assert images.shape == (6, 128, 800, 3) and masks.shape == (6, 128, 800, 4)
    assert images.dtype.name == "float32" and masks.dtype.name == "float32"
    assert float(np.max(images)) > 1
    rle = notes.set_index(["ImageId", "ClassId"])["EncodedPixels"]
    for got, name in zip(masks.numpy(), ids):
        full = rles_to_masks([rle.get((name, c), "") for c in (1, 2, 3, 4)])
        np.testing.assert_array_equal(got, full[::2, ::2].astype(np.float32))
    assert masks.numpy().any(axis=(1, 2, 3)).sum() >= 1


def _jpeg_and_resized(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The JPEG decoder's own shrink of a 1600x256 file to ``size``, and the full decoding resized (antialiased)."""
    import tensorflow as tf

    raw = path.read_bytes()
    scaled = tf.io.decode_jpeg(raw, channels=3, ratio=1600 // size[1]).numpy().astype(np.float32)
    resized = tf.image.resize(tf.io.decode_jpeg(raw, channels=3), size, antialias=True).numpy()
    return scaled, resized


@pytest.mark.parametrize("size", [(128, 800), (64, 400), (32, 200)])
def test_training_and_prediction_read_the_same_pixels_shrunk_by_the_jpeg_decoder(
    synthetic: Path, notes: pd.DataFrame, size: tuple[int, int]
) -> None:
    from defectlib.images import load_severstal_images

    ids = list_images(synthetic / "train_images")[:4]
    images, _ = next(iter(segmentation_dataset(synthetic / "train_images", notes, ids, size, batch_size=4)))
    table = defect_table(synthetic / "train_images", notes).set_index("ImageId").loc[ids].reset_index()
    gate_images, _ = next(iter(classifier_dataset(synthetic / "train_images", table, size, batch_size=4)))
    for image, name in zip(images.numpy(), ids):
        scaled, resized = _jpeg_and_resized(synthetic / "train_images" / name, size)
        np.testing.assert_array_equal(image, scaled)        # 1/2, 1/4, 1/8: decoded straight at that size
        assert np.abs(image - resized).mean() < 3           # a smooth shrink, close to antialiased bilinear
    np.testing.assert_array_equal(gate_images.numpy(), images.numpy())
    np.testing.assert_array_equal(load_severstal_images(synthetic / "train_images", ids, size), images.numpy())


def test_other_sizes_are_decoded_in_full_and_resized(synthetic: Path, notes: pd.DataFrame) -> None:
    from defectlib.images import load_severstal_images

    ids = list_images(synthetic / "train_images")[:2]
    images, _ = next(iter(segmentation_dataset(synthetic / "train_images", notes, ids, (64, 384), batch_size=2)))
    for image, name in zip(images.numpy(), ids):
        _, resized = _jpeg_and_resized(synthetic / "train_images" / name, (64, 384))
        np.testing.assert_allclose(image, resized, atol=1e-3)
    np.testing.assert_allclose(load_severstal_images(synthetic / "train_images", ids, (64, 384)), images.numpy(), atol=1e-3)


# ---------------------------------------------------------------------------- the real data


@pytest.mark.real_data
def test_real_defect_csv(shared_data: Path) -> None:
    table = read_defect_csv(shared_data / "severstal" / "defect_and_no_defect.csv")
    assert len(table) == table["ImageId"].nunique() == 12_568
    assert set(table["label"]) == {0, 1}
    assert (table["label"] == 0).sum() == 5902


@pytest.mark.real_data
def test_real_folder_without_train_csv(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = find_severstal(shared_data / "severstal")
    assert (data.source, data.synthetic, data.train_csv) == ("folder", False, None)
    assert "No train.csv" in capsys.readouterr().out
    names = list_images(data.images_dir)
    assert len(names) == 23
    check_images([data.images_dir / n for n in names])
    labels = read_defect_csv(shared_data / "severstal" / "defect_and_no_defect.csv").set_index("ImageId")["label"]
    assert sorted(n for n in names if labels[n] == 0) == ["0bb3b11e1.jpg", "0be878d63.jpg", "0d1b42754.jpg"]
