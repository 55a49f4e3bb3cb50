"""DEFECTLIB_WEIGHTS_DIR: pretrained weights from a local folder instead of a download, for machines without one."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from defectlib import config
from defectlib.config import keras3_name, pretrained, settings, start_lesson, weights_file


@pytest.fixture
def weights_dir(monkeypatch, tmp_path):
    """Offline, the real NEU folder stands in by an empty one, and an empty weights folder."""
    for name in ("DEFECTLIB_FAST", "DEFECTLIB_SEVERSTAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "neu").mkdir()
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("DEFECTLIB_NEU_DIR", str(tmp_path / "neu"))
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")
    monkeypatch.setenv("DEFECTLIB_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path / "weights"


def test_a_weights_folder_meets_the_weights_needs_offline(weights_dir, monkeypatch):
    s = settings(needs=("neu", "imagenet", "preset"))
    assert (s.fast, s.demo_reason, s.weights_dir) == (False, "", weights_dir)
    assert f"weights folder: {weights_dir}" in str(s)
    assert "Severstal" in settings(needs=("severstal", "imagenet")).demo_reason   # the data is still missing
    monkeypatch.setenv("DEFECTLIB_WEIGHTS_DIR", str(weights_dir / "nowhere"))
    with pytest.raises(ValueError, match="DEFECTLIB_WEIGHTS_DIR=.*nowhere: not a folder"):
        settings()


def test_the_builder_gets_the_local_file_and_no_download_is_tried(weights_dir, capsys):
    start_lesson(needs=("neu", "imagenet"))
    file = weights_file("resnet50_v2")
    with pytest.raises(FileNotFoundError, match=f"has no {file}.*~/.keras/models"):
        pretrained(lambda w: pytest.fail("built without weights"), "ResNet50V2", file=file)
    (weights_dir / file).write_bytes(b"stand-in")
    assert pretrained(lambda w: w, "ResNet50V2", file=file) == (str(weights_dir / file), True)
    assert f"from {weights_dir / file}" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="DEFECTLIB_OFFLINE=1"):     # no file named: the download rule applies
        pretrained(lambda w: w, "a toy")


def test_keras_applications_load_a_stand_in_saved_by_keras_3(weights_dir):
    from defectlib.transfer import transfer_model

    start_lesson(needs=("neu", "imagenet"))
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    saved = weights_dir / keras3_name(weights_file("mobilenet_v2", 96))
    base.save_weights(saved)
    model, real = pretrained(lambda w: transfer_model("mobilenet_v2", image_size=(96, 96), input_shape=(96, 96, 3),
                                                      weights=w), "MobileNetV2", file=weights_file("mobilenet_v2", 96))
    assert real
    for mine, theirs in zip(model.get_layer("base").weights, base.weights):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_a_local_kerashub_preset_is_found_by_its_name(weights_dir):
    from defectlib.vit_tools import _doctest_preset, pretrained_vit

    start_lesson(needs=("neu", "preset"))
    shutil.copytree(_doctest_preset(), weights_dir / "my_vit_preset")
    model, real = pretrained_vit(input_shape=(48, 48, 1), preset="my_vit_preset")
    assert real and model.name == "vit_pretrained"
    assert config.current().weights_dir == weights_dir
