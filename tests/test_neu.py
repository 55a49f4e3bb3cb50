"""The NEU data layer: layouts, splits, pipelines, boxes, synthetic stand-in and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from defectlib import images
from defectlib import synthetic as stand_in
from defectlib.errors import DataError
from defectlib.images import read_image
from defectlib.neu import (CLASS_NAMES, NEUData, canonical_class, class_counts, find_neu, index_neu, neu_datasets,
                           read_boxes)
from defectlib.synthetic import make_synthetic_neu

SHORT = {"crazing": "Cr", "inclusion": "In", "patches": "Pa", "pitted_surface": "PS",
         "rolled-in_scale": "RS", "scratches": "Sc"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return make_synthetic_neu(tmp_path_factory.mktemp("neu"), per_class=10, seed=3)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.delenv("DEFECTLIB_NEU_DIR", raising=False)
    monkeypatch.setenv("DEFECTLIB_FAST", "0")  # full mode (unset, offline would make it a demo run)
    monkeypatch.setenv("DEFECTLIB_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")


def _all_images(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jpg"))


def _copy_as(files: list[Path], target: Path, name_of) -> None:
    for f in files:
        dest = target / name_of(f)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)


def test_class_names_are_stable_and_aliases_map():
    assert CLASS_NAMES == ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
    assert [canonical_class(s) for s in SHORT.values()] == list(CLASS_NAMES)
    assert canonical_class("Pitted Surface") == "pitted_surface"
    assert canonical_class("Rolled_in_Scale") == "rolled-in_scale"
    assert canonical_class("rust") is None


def test_kaggle_layout_is_indexed_with_its_splits(synthetic):
    files = index_neu(synthetic)
    assert files.groupby("split").size().to_dict() == {"train": 48, "validation": 12}
    per_class = files.groupby(["split", "class_name"]).size()
    assert set(per_class["train"]) == {8} and set(per_class["validation"]) == {2}
    assert files["label"].tolist() == [CLASS_NAMES.index(c) for c in files["class_name"]]
    # Every file is really in the folder of its class.
    assert all(Path(p).parent.name == c for p, c in zip(files["path"], files["class_name"]))


def test_original_flat_layout_takes_class_from_file_name(synthetic, tmp_path):
    _copy_as(_all_images(synthetic), tmp_path / "NEU-DET" / "IMAGES", lambda f: f.name)
    files = index_neu(tmp_path)
    assert len(files) == 60
    assert all(Path(p).name.startswith(c) for p, c in zip(files["path"], files["class_name"]))


def test_neu_cls_flat_files(synthetic, tmp_path):
    def short_name(f: Path) -> str:
        cls, number = f.stem.rsplit("_", 1)
        return f"{SHORT[cls]}_{number}.bmp"

    for f in _all_images(synthetic):
        cv2.imwrite(str(tmp_path / short_name(f)), cv2.imread(str(f)))
    files = index_neu(tmp_path)
    assert len(files) == 60
    assert set(files["class_name"]) == set(CLASS_NAMES)
    assert files.loc[files["path"].str.endswith("PS_1.bmp"), "class_name"].item() == "pitted_surface"


def test_split_tree_with_capitalised_names_and_a_test_split(synthetic, tmp_path):
    split_of = {"train": "train", "validation": "valid"}
    _copy_as(_all_images(synthetic), tmp_path,
             lambda f: Path(split_of[f.parents[2].name]) / f.parent.name.replace("_", " ").title() / f.name)
    _copy_as(_all_images(synthetic)[:6], tmp_path, lambda f: Path("test") / f.parent.name.title() / f.name)
    files = index_neu(tmp_path)
    assert files.groupby("split").size().to_dict() == {"test": 6, "train": 48, "validation": 12}


def test_missing_validation_split_is_made_stratified_and_deterministic(synthetic, tmp_path):
    _copy_as(_all_images(synthetic), tmp_path, lambda f: Path(f.parent.name) / f.name)  # <class>/ only
    first, second = index_neu(tmp_path, seed=1), index_neu(tmp_path, seed=1)
    pd.testing.assert_frame_equal(first, second)
    val = first[first["split"] == "validation"]
    assert len(val) == 12 and (val["class_name"].value_counts() == 2).all()
    other_seed = index_neu(tmp_path, seed=2)
    assert set(other_seed.loc[other_seed["split"] == "validation", "path"]) != set(val["path"])


def test_class_counts_and_boxes(synthetic):
    data = NEUData(synthetic, "synthetic", index_neu(synthetic))
    counts = class_counts(data)
    assert counts.index.tolist() == list(CLASS_NAMES)
    assert counts["train"].tolist() == [8] * 6 and counts["validation"].tolist() == [2] * 6
    boxes = read_boxes(synthetic)
    assert set(boxes["class_name"]) == set(CLASS_NAMES)
    assert boxes["file"].nunique() == 60
    assert ((boxes["xmin"] <= boxes["xmax"]) & (boxes["ymin"] <= boxes["ymax"])).all()
    assert boxes[["xmin", "ymin", "xmax", "ymax"]].stack().between(0, 199).all()


def test_pipelines_shapes_order_and_shuffling(synthetic):
    data = NEUData(synthetic, "synthetic", index_neu(synthetic))
    train, val = neu_datasets(data, batch_size=5, seed=0)
    x, y = next(iter(val))
    assert tuple(x.shape) == (5, 200, 200, 1) and x.dtype.name == "float32"
    val_labels = np.concatenate([b.numpy() for _, b in val])
    assert val_labels.tolist() == data.split("validation")["label"].tolist()
    assert np.array_equal(val_labels, np.concatenate([b.numpy() for _, b in val]))  # same order every pass
    first = np.concatenate([b.numpy() for _, b in train])
    second = np.concatenate([b.numpy() for _, b in train])
    assert sorted(first) == sorted(second) == sorted(data.split("train")["label"])
    assert not np.array_equal(first, second)  # reshuffled each epoch
    rgb_train, _ = neu_datasets(data, image_size=(64, 48), color="rgb", batch_size=4)
    assert tuple(next(iter(rgb_train))[0].shape) == (4, 64, 48, 3)
    # autotuning off: with it on, many epochs on 2 cores trained on one core (see neu_datasets)
    assert train.options().autotune.enabled is False and val.options().autotune.enabled is False


def test_validation_images_match_files(synthetic):
    data = NEUData(synthetic, "synthetic", index_neu(synthetic))
    _, val = neu_datasets(data, batch_size=4)
    images = np.concatenate([x.numpy() for x, _ in val])
    for image, path in zip(images, data.split("validation")["path"]):
        assert np.array_equal(image[..., 0], cv2.imread(path, cv2.IMREAD_GRAYSCALE))


def test_synthetic_is_deterministic(tmp_path):
    a = make_synthetic_neu(tmp_path / "a", per_class=3, seed=5)
    b = make_synthetic_neu(tmp_path / "b", per_class=3, seed=5)
    c = make_synthetic_neu(tmp_path / "c", per_class=3, seed=6)
    files_a = [p.relative_to(a) for p in sorted(a.rglob("*")) if p.is_file()]
    assert files_a == [p.relative_to(b) for p in sorted(b.rglob("*")) if p.is_file()]
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files_a if f.suffix == ".jpg")


def test_synthetic_classes_are_learnable_by_a_small_cnn(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    data = NEUData(tmp_path, "synthetic", index_neu(make_synthetic_neu(tmp_path, per_class=40, seed=0)))
    train, val = neu_datasets(data, image_size=(64, 64), batch_size=16)
    model = keras.Sequential([
        keras.Input((64, 64, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(6, activation="softmax")])
    model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=12, verbose=0)
    accuracy = model.evaluate(val, verbose=0)[1]
    assert accuracy > 0.6, f"validation accuracy {accuracy:.2f} is too close to chance (0.17)"


# --------------------------------------------------------------------------- finding the data


def test_find_neu_offline_uses_synthetic_and_says_so(offline, capsys):
    data = find_neu()
    out = capsys.readouterr().out
    assert data.synthetic and "SYNTHETIC" in out and "NOT real" in out
    assert data.files.groupby("split").size().to_dict() == {"train": 1440, "validation": 360}


def test_find_neu_falls_back_when_kaggle_fails(offline, monkeypatch, capsys):
    import kagglehub

    monkeypatch.setenv("DEFECTLIB_OFFLINE", "0")
    monkeypatch.setenv("DEFECTLIB_FAST", "1")

    def no_network(handle):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(kagglehub, "dataset_download", no_network)
    data = find_neu()
    out = capsys.readouterr().out
    assert data.synthetic and "download" in out and "failed" in out and "DEFECTLIB_NEU_DIR" in out
    assert "FAST MODE" in out
    assert data.files.groupby("split").size().to_dict() == {"train": 240, "validation": 60}


def test_find_neu_uses_kagglehub_when_it_works(offline, monkeypatch, synthetic, tmp_path, capsys):
    import kagglehub

    real_like = tmp_path / "kaggle"
    shutil.copytree(synthetic, real_like / "NEU-DET", ignore=shutil.ignore_patterns(stand_in.SYNTHETIC_MARKER))
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "0")
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle: str(real_like))
    data = find_neu()
    assert data.source == "kaggle" and not data.synthetic
    assert "real NEU" in capsys.readouterr().out


def test_find_neu_reads_the_environment_and_subsamples(offline, monkeypatch, synthetic):
    monkeypatch.setenv("DEFECTLIB_NEU_DIR", str(synthetic))
    data = find_neu(max_per_class=3)
    assert data.root == synthetic and data.synthetic  # the marker file says it is generated
    assert data.files.groupby("split").size().to_dict() == {"train": 18, "validation": 6}


def test_find_neu_missing_folder(offline, tmp_path):
    with pytest.raises(DataError, match="does-not-exist.*does not exist"):
        find_neu(tmp_path / "does-not-exist")


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def small_copy(synthetic, tmp_path) -> Path:
    target = tmp_path / "NEU-DET"
    shutil.copytree(synthetic, target)
    return target


def _first_image(root: Path) -> Path:
    return next((root / "train" / "images" / "crazing").glob("*.jpg"))


def test_zero_byte_image(small_copy):
    bad = _first_image(small_copy)
    bad.write_bytes(b"")
    with pytest.raises(DataError, match=f"{bad.name}.*empty"):
        neu_datasets(NEUData(small_copy, "folder", index_neu(small_copy)))


def test_corrupt_image(small_copy):
    bad = _first_image(small_copy)
    bad.write_bytes(b"this is not a jpeg" * 10)
    with pytest.raises(DataError, match=f"{bad.name}.*not a readable image"):
        read_image(bad)


def test_non_image_file_in_class_folder(small_copy):
    (small_copy / "train" / "images" / "patches" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt.*not an image"):
        index_neu(small_copy)


def test_unexpected_size_and_colour_modes(tmp_path):
    wrong_size, rgba, deep = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    cv2.imwrite(str(wrong_size), np.zeros((100, 120), np.uint8))
    cv2.imwrite(str(rgba), np.zeros((200, 200, 4), np.uint8))
    cv2.imwrite(str(deep), np.zeros((200, 200), np.uint16))
    with pytest.raises(DataError, match="a.png.*120x100.*200x200"):
        read_image(wrong_size)
    assert read_image(wrong_size, size=(200, 200)).shape == (200, 200, 1)
    with pytest.raises(DataError, match=r"b.png: colour with alpha \(RGBA, 4 channels\)"):
        read_image(rgba)
    with pytest.raises(DataError, match="c.png.*uint16"):
        read_image(deep)


def test_empty_and_unknown_class_folders(small_copy):
    rust = small_copy / "train" / "images" / "rust"
    rust.mkdir()
    index_neu(small_copy)  # an empty unknown folder leaves no image out
    shutil.copy(_first_image(small_copy), rust / "rust_1.jpg")
    with pytest.raises(DataError, match=r"rust/: 1 image\(s\) not used: the folder name is not a NEU class"):
        index_neu(small_copy)
    shutil.rmtree(rust)
    shutil.rmtree(small_copy / "validation" / "images" / "scratches")
    (small_copy / "validation" / "images" / "scratches").mkdir()
    with pytest.raises(DataError, match="scratches: class folder has no images"):
        index_neu(small_copy)


def test_missing_class_or_split(small_copy, tmp_path):
    shutil.rmtree(small_copy / "train" / "images" / "inclusion")
    with pytest.raises(DataError, match="no training images for class.*inclusion"):
        index_neu(small_copy)
    only_validation = tmp_path / "only-val"
    (only_validation / "validation").mkdir(parents=True)
    shutil.copytree(small_copy / "validation" / "images", only_validation / "validation" / "images")
    with pytest.raises(DataError, match="train split is required"):
        index_neu(only_validation)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no NEU images found"):
        index_neu(empty)


def test_malformed_annotation(small_copy):
    bad = next((small_copy / "train" / "annotations").glob("*.xml"))
    bad.write_text("<annotation><size><width>200</width>")
    with pytest.raises(DataError, match=f"{bad.name}.*not a valid VOC annotation"):
        read_boxes(small_copy)


# --------------------------------------------------------------------------- the real reference data


@pytest.mark.real_data
def test_real_neu_is_found_with_six_classes(shared_data, monkeypatch):
    monkeypatch.setenv("DEFECTLIB_FAST", "0")
    data = find_neu(shared_data / "NEU-DET")
    assert data.source == "folder" and not data.synthetic
    assert data.files.groupby("split").size().to_dict() == {"train": 1440, "validation": 360}
    assert class_counts(data)["train"].tolist() == [240] * 6
    assert set(data.files["class_name"]) == set(CLASS_NAMES)
    boxes = read_boxes(shared_data / "NEU-DET")
    assert boxes["file"].nunique() == 1800 and set(boxes["class_name"]) == set(CLASS_NAMES)


def test_the_stand_in_appears_only_when_complete(tmp_path, monkeypatch):
    """Notebooks run in parallel (make test) share one data home: no one may see a half-written set."""
    out = tmp_path / "NEU-DET"
    draw = stand_in._draw_defect
    seen = []

    def watching(*args, **kwargs):
        seen.append(out.exists())
        return draw(*args, **kwargs)

    monkeypatch.setattr(stand_in, "_draw_defect", watching)
    assert stand_in.make_synthetic_neu(tmp_path, per_class=3) == out
    assert len(seen) == 18 and not any(seen)     # nothing is written where readers look
    assert len(index_neu(out)) == 18 and [p.name for p in tmp_path.iterdir()] == ["NEU-DET"]


def test_a_folder_that_is_not_a_complete_stand_in_is_never_deleted(tmp_path):
    mine = tmp_path / "NEU-DET" / "train"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my own file")
    with pytest.raises(DataError, match=r"NEU-DET exists and is not a complete generated set"):
        stand_in.make_synthetic_neu(tmp_path, per_class=2)
    assert (mine / "notes.txt").read_text() == "my own file"
    assert [p.name for p in tmp_path.iterdir()] == ["NEU-DET"]   # no temporary folder left behind


def test_two_processes_making_the_stand_in_at_once_both_get_a_complete_set(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        roots = pool.starmap(stand_in.make_synthetic_neu, [(tmp_path, 20), (tmp_path, 20)])
    assert roots[0] == roots[1] == tmp_path / "NEU-DET"
    files = index_neu(roots[0])
    assert len(files) == 120 and [p.name for p in tmp_path.iterdir()] == ["NEU-DET"]
    assert all(images.decode_image_file(path).shape[:2] == (200, 200) for path in files["path"])
