"""Lesson 5's tools: class activation maps, the pointing game, calibration and the LiteRT export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from defectlib import inspection as ins
from defectlib import interpret
from defectlib.cnn import refined_cnn


def _spot_detector():
    """A GAP-headed toy model whose feature map is the image itself: class 1 = "bright spot"."""
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.AveragePooling2D(4, name="features"),
                              keras.layers.GlobalAveragePooling2D(name="gap"),
                              keras.layers.Dense(2, activation="softmax", name="probabilities")])
    model.get_layer("probabilities").set_weights([np.array([[-1.0, 1.0]]), np.zeros(2)])
    return model


def test_cam_has_one_map_per_image_at_the_feature_resolution():
    model = refined_cnn(input_shape=(64, 64, 1), widths=(4, 8, 16), augment=False)
    images = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 1)).astype("float32")
    maps = interpret.class_activation_maps(model, images, classes=np.array([0, 1, 5]))
    assert maps.shape == (3, 8, 8)
    assert interpret.grad_cam(model, images).shape == (3, 8, 8)


def test_cam_is_exact_for_a_gap_head():
    """Averaging the map of class c plus its bias gives the logit of class c: CAM explains the score exactly."""
    model = refined_cnn(input_shape=(32, 32, 1), widths=(4, 8), augment=False)
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    logits = np.stack([interpret.class_activation_maps(model, images, np.full(2, c)).mean(axis=(1, 2))
                       for c in range(6)], axis=1) + model.get_layer("probabilities").bias.numpy()
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(softmax / softmax.sum(1, keepdims=True), probabilities, atol=1e-5)


def test_the_map_maximum_lands_in_the_synthetic_defect_box():
    images = np.zeros((2, 32, 32, 1), "float32")
    images[0, 20:28, 4:12] = 255   # defect box x 4-11, y 20-27
    images[1, 0:8, 24:32] = 255    # defect box x 24-31, y 0-7
    boxes = [np.array([[4, 20, 11, 27]]), np.array([[24, 0, 31, 7]])]
    model = _spot_detector()
    maps = interpret.class_activation_maps(model, images, np.ones(2, int))
    game = ins.pointing_game(ins.map_peaks(maps, (32, 32)), boxes, (32, 32))
    assert game["map"].all() and not game["centre"].any()
    assert game["random"].tolist() == [64 / 1024, 64 / 1024]


def test_grad_cam_points_at_the_defect_and_matches_cam_for_a_gap_head():
    """With a GAP head the gradient is the same at every position, so Grad-CAM is CAM scaled per image."""
    images = np.zeros((2, 32, 32, 1), "float32")
    images[0, 20:28, 4:12] = 255
    images[1, 0:8, 24:32] = 255
    images[1, 16:20, 0:4] = 100    # a fainter second spot: the peak must stay on the bright one
    boxes = [np.array([[4, 20, 11, 27]]), np.array([[24, 0, 31, 7]])]
    model = _spot_detector()
    maps = interpret.grad_cam(model, images, np.ones(2, int), feature_layer="features")
    game = ins.pointing_game(ins.map_peaks(maps, (32, 32)), boxes, (32, 32))
    assert game["map"].all()
    cams = interpret.class_activation_maps(model, images, np.ones(2, int))
    for grad, cam in zip(maps, cams):
        ratio = grad[cam > 0] / cam[cam > 0]
        assert ratio.min() > 0 and np.allclose(ratio, ratio[0], rtol=1e-4)
    # For the other class the gradient is negative everywhere, and the ReLU leaves nothing.
    assert not interpret.grad_cam(model, images, np.zeros(2, int), feature_layer="features").any()


def test_the_pointing_game_refuses_images_without_a_box():
    with pytest.raises(ValueError, match="no box"):
        ins.pointing_game(np.zeros((1, 2)), [np.zeros((0, 4), int)], (10, 10))


def test_boxes_match_images_by_file_name_and_class(tmp_path):
    from defectlib.neu import read_boxes
    from defectlib.synthetic import make_synthetic_neu

    root = make_synthetic_neu(tmp_path / "neu", per_class=2)
    boxes = read_boxes(root)
    row = boxes.iloc[0]
    found = ins.boxes_by_image([f"/x/{row['file']}"], [row["class_name"]], boxes)[0]
    assert [row["xmin"], row["ymin"], row["xmax"], row["ymax"]] in found.tolist()
    assert len(ins.boxes_by_image([f"/x/{row['file']}"], ["no_such_class"], boxes)[0]) == 0


def test_ece_of_a_known_case():
    # 10 images at confidence 0.8 of which 6 right, 10 at 0.3 (3 classes) of which 3 right
    p = np.array([[0.8, 0.1, 0.1]] * 10 + [[0.3, 0.35, 0.35]] * 10)
    labels = np.array([0] * 6 + [1] * 4 + [1] * 3 + [0] * 7)
    assert ins.expected_calibration_error(p, labels) == pytest.approx(0.5 * 0.2 + 0.5 * 0.05)
    table = ins.reliability_table(p, labels)
    assert table["count"].tolist() == [10, 10] and table["accuracy"].tolist() == [0.3, 0.6]


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20_000, 4))
    labels = np.array([rng.choice(4, p=p) for p in interpret.softmax_with_temperature(np.exp(logits), 1.0)])
    overconfident = interpret.softmax_with_temperature(np.exp(logits), 1 / 3)  # logits multiplied by 3
    temperature = interpret.fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3.0, rel=0.05)
    scaled = interpret.softmax_with_temperature(overconfident, temperature)
    assert ins.expected_calibration_error(scaled, labels) < 0.02 < ins.expected_calibration_error(overconfident, labels)
    assert (scaled.argmax(1) == overconfident.argmax(1)).all()


def test_accuracy_coverage_rises_as_the_model_rejects_more():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1, 500)
    p = np.stack([confidence, 1 - confidence], axis=1)
    labels = (rng.uniform(size=500) > confidence).astype(int)  # calibrated by construction
    curve = ins.accuracy_coverage(p, labels)
    assert curve["coverage"].iloc[-1] == 1 and curve["accuracy"].iloc[-1] == pytest.approx((labels == 0).mean())
    assert curve["accuracy"].iloc[50] > curve["accuracy"].iloc[-1]


def test_export_litert_takes_one_input():
    import keras

    a, b = keras.Input((2,)), keras.Input((2,))
    with pytest.raises(ValueError, match="2 inputs"):
        ins.export_litert(keras.Model([a, b], keras.layers.Add()([a, b])), "/tmp/never.tflite")


def test_litert_round_trip_float32_and_8bit(tmp_path):
    import tensorflow as tf

    model = refined_cnn(input_shape=(32, 32, 1), widths=(4, 8))
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 1)).astype("float32")
    expected = model.predict(images, verbose=0)
    ins.export_litert(model, tmp_path / "f32.tflite")
    assert np.allclose(ins.litert_predict(tmp_path / "f32.tflite", images), expected, atol=1e-5)
    model.export(str(tmp_path / "keras.tflite"), format="litert", verbose=False)  # Keras's own route, where it works
    assert np.allclose(ins.litert_predict(tmp_path / "keras.tflite", images), expected, atol=1e-5)

    def representative():
        for image in images:
            yield [image[None]]

    ins.export_litert(model, tmp_path / "q.tflite", [tf.lite.Optimize.DEFAULT], representative)
    quantised = ins.litert_predict((tmp_path / "q.tflite").read_bytes(), images)
    assert quantised.shape == expected.shape and np.abs(quantised - expected).max() < 0.05
