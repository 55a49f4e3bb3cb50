"""Issue 14: the data layer used as a user with messy folders and tables would.

Every image file and every annotation row is either used or reported; every bad
input is a DataError (ValueError for RLE) naming the file or row. One test, or
one group, per case of the issue, all on small files generated in tmp_path.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from defectlib.errors import DataError
from defectlib.images import load_images, read_image
from defectlib.neu import CLASS_NAMES, index_neu
from defectlib.synthetic import make_synthetic_neu
from defectlib.rle import parse_rle, rle_decode, rle_encode
from defectlib.images import check_images, list_images
from defectlib.severstal import check_annotations, classifier_dataset, read_train_csv, segmentation_dataset
from defectlib.synthetic import make_synthetic_severstal


@pytest.fixture(scope="module")
def neu_source(tmp_path_factory) -> Path:
    """A tiny synthetic NEU copy in the Kaggle layout: 4 training, 1 validation image per class."""
    return make_synthetic_neu(tmp_path_factory.mktemp("neu"), per_class=5, seed=1)


@pytest.fixture
def neu(neu_source, tmp_path) -> Path:
    """A fresh, writable copy of ``neu_source``."""
    return Path(shutil.copytree(neu_source, tmp_path / "NEU-DET"))


@pytest.fixture(scope="module")
def severstal(tmp_path_factory) -> Path:
    return make_synthetic_severstal(tmp_path_factory.mktemp("severstal"), n_images=4, seed=0, height=64, width=400)


def _image(root: Path, cls: str = "crazing", split: str = "train") -> Path:
    return sorted((root / split / "images" / cls).glob("*.jpg"))[0]


def _flat_copy(neu: Path, target: Path) -> Path:
    """The same images in the original flat ``IMAGES/`` layout."""
    (target / "IMAGES").mkdir(parents=True)
    for f in neu.rglob("*.jpg"):
        shutil.copy(f, target / "IMAGES" / f.name)
    return target / "IMAGES"


def _split_tree(neu: Path, target: Path) -> Path:
    """The same images as ``<split>/<class>/`` folders."""
    for split in ("train", "validation"):
        shutil.copytree(neu / split / "images", target / split)
    return target


# --------------------------------------------------------------------------- 1. truncated JPEGs


def _cut(path: Path, keep: float, end_marker: bool) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] + (b"\xff\xd9" if end_marker else b""))
    return path


@pytest.mark.parametrize("end_marker", [False, True], ids=["cut", "cut-then-end-marker"])
def test_truncated_neu_jpegs_are_named(neu, end_marker):
    bad = _cut(_image(neu), 0.6, end_marker)
    with pytest.raises(DataError, match=f"{re.escape(str(bad))}: truncated JPEG"):
        read_image(bad)
    with pytest.raises(DataError, match=f"{re.escape(str(bad))}: truncated JPEG"):
        load_images(index_neu(neu)["path"])


@pytest.mark.parametrize("end_marker", [False, True], ids=["cut", "cut-then-end-marker"])
def test_truncated_severstal_jpegs_are_named(severstal, tmp_path, end_marker):
    good = severstal / "train_images" / list_images(severstal / "train_images")[0]
    bad = _cut(Path(shutil.copy(good, tmp_path / "cut.jpg")), 0.5, end_marker)
    with pytest.raises(DataError, match=f"{re.escape(str(bad))}: truncated JPEG"):
        check_images([good, bad], size=(64, 400))


def test_a_cut_progressive_jpeg_is_named(neu, tmp_path):
    image = cv2.imread(str(_image(neu)), cv2.IMREAD_GRAYSCALE)
    path = tmp_path / "progressive.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert read_image(path).shape == (200, 200, 1)
    _cut(path, 0.6, end_marker=False)
    with pytest.raises(DataError, match="progressive.jpg: truncated JPEG"):
        read_image(path)


# --------------------------------------------------------------------------- 2. segmentation annotations


def _masks(ds) -> np.ndarray:
    return np.concatenate([m.numpy() for _, m in ds])


def test_text_class_ids_give_the_same_masks(severstal):
    notes = read_train_csv(severstal / "train.csv")
    ids = list_images(severstal / "train_images")
    kwargs = dict(mask_size=(64, 400), batch_size=4, source_size=(64, 400))
    as_numbers = _masks(segmentation_dataset(severstal / "train_images", notes, ids, **kwargs))
    as_text = _masks(segmentation_dataset(severstal / "train_images", notes.astype({"ClassId": str}), ids, **kwargs))
    assert as_numbers.any()
    np.testing.assert_array_equal(as_text, as_numbers)
    assert check_annotations(notes.astype({"ClassId": str}))["ClassId"].tolist() == notes["ClassId"].tolist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(ClassId=t["ClassId"].where(t.index != 1, 7)), r"row 1 \(.*\): ClassId 7 is not one of"),
        (lambda t: t.assign(ClassId=t["ClassId"].astype(str).where(t.index != 0, "x")), r"row 0 \(.*\): ClassId 'x'"),
        (lambda t: pd.concat([t, t.iloc[[0]]], ignore_index=True), r"row \d+ \(.*, class \d\): duplicate of row 0"),
        (lambda t: t.assign(EncodedPixels=t["EncodedPixels"].where(t.index != 1, "1 2 3")),
         r"row 1 \(.*, class \d\): RLE has an odd number"),
        (lambda t: t.assign(EncodedPixels=t["EncodedPixels"].where(t.index != 1, "25590 20")),
         r"row 1 \(.*, class \d\): .*past the image's 25600 pixels"),
    ],
    ids=["class-7", "class-text", "duplicate", "odd-rle", "rle-past-the-end"],
)
def test_bad_annotation_rows_are_named_before_iterating(severstal, change, message):
    notes = change(read_train_csv(severstal / "train.csv"))
    image = notes["ImageId"].iloc[0 if ("duplicate" in message or "row 0" in message) else 1]
    with pytest.raises(DataError, match=message) as caught:
        segmentation_dataset(severstal / "train_images", notes, list_images(severstal / "train_images"),
                             (32, 200), source_size=(64, 400))
    assert image in str(caught.value)


def test_every_bad_annotation_row_is_listed():
    notes = pd.DataFrame({"ImageId": ["a.jpg", "b.jpg", "c.jpg"], "ClassId": [0, "2", 5],
                          "EncodedPixels": ["1 2", "nan", "1 2"]})
    with pytest.raises(DataError, match="3 problem") as caught:
        check_annotations(notes)
    assert all(f"row {i} ({name}" in str(caught.value) for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]))
    with pytest.raises(DataError, match="missing column.*EncodedPixels"):
        check_annotations(notes.drop(columns="EncodedPixels"))


# --------------------------------------------------------------------------- 3. one rule: used or reported


def test_unknown_split_folders_are_reported_in_every_layout(neu, tmp_path):
    tree = _split_tree(neu, tmp_path / "tree")
    shutil.move(tree / "validation", tree / "validation_set")
    # Before: validation_set/ was ignored and a validation split was quietly carved from train.
    with pytest.raises(DataError, match=r"validation_set/: 6 image\(s\) not used: the folder name is not a split"):
        index_neu(tree)
    shutil.move(neu / "validation", neu / "validation_set")
    with pytest.raises(DataError, match=r"validation_set/: 6 image\(s\) not used: the folder name is not a split"):
        index_neu(neu)


def test_everything_not_used_is_listed_in_one_message(neu, tmp_path):
    tree = _split_tree(neu, tmp_path / "tree")
    (tree / "misc").mkdir()
    shutil.copy(_image(neu), tree / "misc" / "crazing_99.jpg")
    shutil.copy(_image(neu), tree / "crazing_98.jpg")  # loose at split level
    (tree / "train" / "patches" / "more").mkdir()  # a sub-folder inside a class folder
    shutil.copy(_image(neu, "patches"), tree / "train" / "patches" / "more" / "patches_97.jpg")
    shutil.copy(_image(neu), tree / "train" / "crazing_96.jpg")  # loose inside a split folder
    with pytest.raises(DataError, match="4 problem") as caught:
        index_neu(tree)
    message = str(caught.value)
    for unused in ["misc/: 1 image(s) not used", "crazing_98.jpg: image not used", "more/: 1 image(s) not used",
                   "crazing_96.jpg: image not used"]:
        assert unused in message


def test_kaggle_layout_reports_loose_images_and_stray_folders(neu):
    shutil.copy(_image(neu), neu / "train" / "images" / "crazing_95.jpg")
    shutil.copy(_image(neu), neu / "train" / "crazing_94.jpg")
    (neu / "train" / "images" / "crazing" / "old").mkdir()
    shutil.copy(_image(neu), neu / "train" / "images" / "crazing" / "old" / "crazing_93.jpg")
    (neu / "train" / "extra").mkdir()
    shutil.copy(_image(neu), neu / "train" / "extra" / "crazing_92.jpg")
    with pytest.raises(DataError, match="4 problem") as caught:
        index_neu(neu)
    for unused in ["crazing_95.jpg: image not used", "crazing_94.jpg: image not used", "old/: 1 image(s) not used",
                   "extra/: 1 image(s) not used"]:
        assert unused in str(caught.value)


def test_sub_folder_of_a_flat_image_folder_is_reported(neu, tmp_path):
    images = _flat_copy(neu, tmp_path / "flat")
    assert len(index_neu(tmp_path / "flat")) == 30
    (images / "batch2").mkdir()
    shutil.copy(_image(neu), images / "batch2" / "crazing_91.jpg")
    with pytest.raises(DataError, match=r"batch2/: 1 image\(s\) not used: a sub-folder inside the image folder"):
        index_neu(tmp_path / "flat")


# --------------------------------------------------------------------------- 4. side files


def test_side_files_of_systems_and_tools_are_skipped(neu, tmp_path):
    clean = index_neu(neu)
    image = _image(neu)
    for folder in [neu, neu / "train", neu / "train" / "images", image.parent]:
        for name in ("Thumbs.db", "desktop.ini", ".DS_Store"):
            (folder / name).write_bytes(b"\x00side file")
    (image.parent / f"{image.stem}.xml").write_text("<annotation/>")  # LabelImg saves beside the image
    for side in ("__MACOSX", ".ipynb_checkpoints"):
        copy = neu / side / "train" / "images" / "crazing"
        copy.mkdir(parents=True)
        shutil.copy(image, copy / f"._{image.name}")
        shutil.copy(image, copy / image.name)
    (image.parent / ".ipynb_checkpoints").mkdir()
    shutil.copy(image, image.parent / ".ipynb_checkpoints" / image.name)
    pd.testing.assert_frame_equal(index_neu(neu), clean)
    flat = _flat_copy(neu, tmp_path / "flat")
    (flat / "Thumbs.db").write_bytes(b"x")
    (flat / "__MACOSX").mkdir()
    shutil.copy(image, flat / "__MACOSX" / image.name)
    assert len(index_neu(tmp_path / "flat")) == len(clean)


# --------------------------------------------------------------------------- 5. RLE with absurd numbers


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 99999999999999999999999", "too large"),
        ("9223372036854775807 9223372036854775807", "too large"),  # their sum wraps around in int64
        ("4611686018427387904 4611686018427387904", "too large"),
        ("\u0661 2", "'\u0661' is not a whole number"),  # an Arabic-Indic digit one
        ("1 \u00b2", "'\u00b2' is not a whole number"),  # a superscript two
        ("\uff11 2", "is not a whole number"),  # a full-width one
    ],
)
def test_absurd_rle_numbers_are_a_value_error(rle, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        parse_rle(rle)
    path = tmp_path / "train.csv"
    path.write_text(f"ImageId,ClassId,EncodedPixels\na.jpg,1,1 2\nb.jpg,3,{rle}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"(?s)train.csv: .*line 3 \(b.jpg, class 3\): .*{message}"):
        read_train_csv(path)


def test_large_but_sane_numbers_still_work():
    assert parse_rle("000000000000000000001 2", (4, 4))[1].tolist() == [2]
    assert parse_rle("1 2\u00a05 1", (4, 4))[0].tolist() == [0, 4]  # a no-break space still separates
    for odd in ("+1 2", "1_0 2", "1-3 2"):  # int() would take the first two
        with pytest.raises(ValueError, match=f"RLE value '{re.escape(odd.split()[0])}' is not a whole number"):
            parse_rle(odd, (4, 4))
    mask = np.zeros((256, 1600), np.uint8)
    mask[-1, -1] = 1
    assert rle_encode(rle_decode(rle_encode(mask))) == "409600 1"


# --------------------------------------------------------------------------- 6. no false rejections


def _odd_but_valid(source: Path, folder: Path) -> tuple[Path, Path]:
    trailing, png = folder / "trailing.jpg", folder / "png.jpg"
    trailing.write_bytes(source.read_bytes() + b"\x00\x00 bytes after the end marker\n")
    png.write_bytes(cv2.imencode(".png", cv2.imread(str(source), cv2.IMREAD_UNCHANGED))[1].tobytes())
    return trailing, png


def test_neu_loads_a_jpeg_with_trailing_bytes_and_a_png_named_jpg(neu, tmp_path):
    source = _image(neu)
    expected = read_image(source)
    for path in _odd_but_valid(source, tmp_path):
        np.testing.assert_array_equal(read_image(path), expected)


def test_severstal_loads_a_jpeg_with_trailing_bytes_and_a_png_named_jpg(severstal, tmp_path):
    import tensorflow as tf

    source = severstal / "train_images" / list_images(severstal / "train_images")[0]
    paths = _odd_but_valid(source, tmp_path)
    check_images(paths, size=(64, 400))
    table = pd.DataFrame({"ImageId": [p.name for p in paths], "label": [0, 1]})
    images, _ = next(iter(classifier_dataset(tmp_path, table, (64, 400), batch_size=2, source_size=(64, 400))))
    expected = tf.io.decode_jpeg(source.read_bytes(), channels=3).numpy()
    np.testing.assert_array_equal(images.numpy()[0], expected)  # the JPEG decoded as if without the extra bytes
    opencv = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(images.numpy()[1], opencv)  # the PNG holds OpenCV's decoding of the JPEG
    small, _ = next(iter(classifier_dataset(tmp_path, table, (32, 200), batch_size=2, source_size=(64, 400))))
    np.testing.assert_array_equal(small.numpy()[0], tf.io.decode_jpeg(source.read_bytes(), channels=3, ratio=2))
    np.testing.assert_allclose(small.numpy()[1], tf.image.resize(opencv, (32, 200), antialias=True), atol=1e-3)


def test_macos_resource_forks_beside_severstal_images_are_skipped(severstal, tmp_path):
    from defectlib.severstal import defect_table

    images = Path(shutil.copytree(severstal / "train_images", tmp_path / "train_images"))
    names = list_images(images)
    for name in names:
        (images / f"._{name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")   # what a zip made on macOS holds
    assert list_images(images) == names
    table = defect_table(images, read_train_csv(severstal / "train.csv"))
    assert table["ImageId"].tolist() == names
    check_images([str(images / n) for n in table["ImageId"]], (64, 400))    # and every listed file is an image


# --------------------------------------------------------------------------- 7. clear errors


def test_small_set_without_validation_folder(neu, tmp_path):
    tree = _split_tree(neu, tmp_path / "tree")
    shutil.rmtree(tree / "validation")
    for extra in (tree / "train").rglob("*_[234].jpg"):
        extra.unlink()  # one training image per class: nothing to carve a validation split from
    with pytest.raises(DataError, match=r"tree has no validation split, and index_neu cannot carve a stratified 20% "
                                        r"validation split from 6 training image\(s\).*at least 26 in all. Add a "
                                        "validation/ split folder") as caught:
        index_neu(tree)
    assert "test_size" not in str(caught.value)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path / 'nowhere'))} does not exist"):
        index_neu(tmp_path / "nowhere")


def test_neu_names_every_bad_file(neu):
    empty, text = _image(neu, "crazing"), _image(neu, "scratches", "validation")
    empty.write_bytes(b"")
    text.write_text("not an image")
    with pytest.raises(DataError, match="2 problem") as caught:
        load_images(index_neu(neu)["path"])
    assert f"{empty}: empty file" in str(caught.value) and f"{text}: not a readable image" in str(caught.value)


@pytest.mark.parametrize("rle", ["nan", "1,3", "1 3 nan"])
def test_bad_tokens_are_named_before_the_count(rle):
    with pytest.raises(ValueError, match=f"RLE value '{re.escape(rle.split()[-1])}' is not a whole number"):
        parse_rle(rle)


def test_two_channel_png_is_called_grey_with_alpha(tmp_path):
    from PIL import Image

    path = tmp_path / "crazing_1.png"
    Image.fromarray(np.zeros((200, 200, 2), np.uint8), "LA").save(path)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[2] == 4  # ...and reads it back as 4 channels
    with pytest.raises(DataError, match=r"crazing_1.png: grey with alpha \(2 channels\), expected grayscale"):
        read_image(path)


# --------------------------------------------------------------------------- the real data: no false rejections


@pytest.mark.real_data
def test_every_real_image_passes_the_checks(shared_data):
    files = index_neu(shared_data / "NEU-DET")
    assert load_images(files["path"]).shape == (1800, 200, 200, 1)
    for folder in ("severstal", "severstal-sample"):
        images = shared_data / folder / "train_images"
        check_images([images / name for name in list_images(images)])
    assert sorted(set(files["class_name"])) == sorted(CLASS_NAMES)
