"""The lesson 1 model builders: the seed's LeNet and the refined CNN (defectlib.cnn)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from defectlib.ablation import ABLATION_STEPS, ablation_cnn  # noqa: E402
from defectlib.cnn import lenet, refined_cnn, seed_schedule  # noqa: E402

# Small versions of both models, so that every test runs in a few seconds on a CPU.
SMALL_LENET = {"input_shape": (48, 48, 3), "image_size": (40, 40), "filters": (4, 8, 8)}
SMALL_REFINED = {"input_shape": (48, 48, 1), "widths": (4, 8, 16)}


def small_models():
    keras.utils.set_random_seed(0)
    return [lenet(**SMALL_LENET), refined_cnn(**SMALL_REFINED)]


def raw_pixels(model, n: int = 4, seed: int = 0) -> np.ndarray:
    """Random 0-255 pixels with the model's input shape (what the data pipeline yields)."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


@pytest.mark.parametrize("index", [0, 1], ids=["lenet", "refined_cnn"])
def test_output_is_a_softmax_over_six_classes(index):
    model = small_models()[index]
    p = np.asarray(model(raw_pixels(model, n=5), training=False))
    assert p.shape == (5, 6)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_num_classes_and_input_shape_are_used():
    model = refined_cnn(input_shape=(40, 40, 3), widths=(4, 8), num_classes=3)
    assert model.output_shape == (None, 3)
    assert tuple(model.inputs[0].shape) == (None, 40, 40, 3)


def augmentation_layers(model) -> list:
    return [layer for layer in model.layers if layer.__class__.__name__.startswith("Random")]


def test_lenet_resizes_rescales_and_augments_inside_the_model():
    model = lenet(**SMALL_LENET)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds[:6] == ["Resizing", "Rescaling", "RandomFlip", "RandomRotation", "RandomContrast", "RandomZoom"]
    assert model.get_layer("rescale").scale == pytest.approx(1 / 255)
    assert model.get_layer("flip").mode == "horizontal_and_vertical"
    assert model.get_layer("rotate").factor == pytest.approx((-0.2, 0.2))
    # 48x48 input, resized to 40x40, then a 3x3 convolution with padding="same": still 40x40.
    assert model.get_layer("conv1").output.shape[1:3] == (40, 40)
    assert model.get_layer("conv3").output.shape[-1] == 8


def test_lenet_is_the_seed_model_exactly():
    model = lenet()
    assert tuple(model.inputs[0].shape) == (None, 255, 255, 3)
    assert model.count_params() == 15_839_174
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.5, 0.3]
    assert model.get_layer("dense").units == 128


def test_seed_schedule_keeps_the_rate_ten_epochs_then_decays():
    rates = [1e-3]  # the rate of epoch 0; Keras calls the rule at the start of every epoch
    for epoch in range(1, 14):
        rates.append(seed_schedule(epoch, rates[-1]))
    assert rates[:10] == [1e-3] * 10
    assert rates[13] == pytest.approx(1e-3 * 0.95 ** 4)


def test_refined_rescales_and_flips_inside_the_model_and_shrinks_in_the_stem():
    model = refined_cnn(**SMALL_REFINED)
    assert [layer.__class__.__name__ for layer in model.layers[:3]] == ["Rescaling", "RandomFlip", "Conv2D"]
    assert model.get_layer("rescale").scale == pytest.approx(1 / 255)
    assert model.get_layer("flip").mode == "horizontal_and_vertical"
    stem = model.get_layer("stem_conv")
    assert stem.output.shape[1] == 48 // stem.strides[0]
    assert model.get_layer("gap").output.shape[1:] == (16,)


@pytest.mark.parametrize("index", [0, 1], ids=["lenet", "refined_cnn"])
def test_augmentation_is_in_the_model_and_only_active_in_training(index):
    model = small_models()[index]
    x = raw_pixels(model, n=2)
    # Inference: no randomness, the same input gives the same output every time.
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.asarray(model(x, training=False)))
    np.testing.assert_array_equal(np.asarray(model.predict(x, verbose=0)), np.asarray(model(x, training=False)))

    def augment(images, training):
        for layer in augmentation_layers(model):
            images = layer(images, training=training)
        return np.asarray(images)

    np.testing.assert_array_equal(augment(x, training=False), x)
    # Training: the augmentation layers change the images (at least once in a few draws).
    assert any(not np.allclose(augment(x, training=True), x) for _ in range(8))


def test_augmentation_can_be_switched_off():
    for model in (lenet(**SMALL_LENET, augment=False), refined_cnn(**SMALL_REFINED, augment=False)):
        assert augmentation_layers(model) == []
    assert len(augmentation_layers(lenet(**SMALL_LENET))) == 4


def test_batch_norm_momentum_as_set():
    default = [layer.momentum for layer in refined_cnn(**SMALL_REFINED).layers
               if isinstance(layer, keras.layers.BatchNormalization)]
    assert default == [0.9] * len(SMALL_REFINED["widths"])
    custom = [layer.momentum for layer in refined_cnn(**SMALL_REFINED, bn_momentum=0.8).layers
              if isinstance(layer, keras.layers.BatchNormalization)]
    assert custom == [0.8] * len(SMALL_REFINED["widths"])


def test_convolutions_before_batch_norm_have_no_bias():
    model = refined_cnn(**SMALL_REFINED)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == len(SMALL_REFINED["widths"])
    assert not any(conv.use_bias for conv in convs)


def test_refined_has_far_fewer_parameters_than_lenet_at_full_size():
    seed_recipe, refined = lenet(), refined_cnn()
    assert refined.count_params() == 98_758
    assert refined.count_params() * 150 < seed_recipe.count_params()
    # The Flatten + Dense head holds nearly all of LeNet's parameters.
    assert seed_recipe.get_layer("dense").count_params() > 0.95 * seed_recipe.count_params()


def test_the_ablation_goes_from_the_seed_model_to_the_refined_cnn():
    first, last = ABLATION_STEPS[0][1], ABLATION_STEPS[-1][1]
    seed_like = ablation_cnn(**first, image_size=255)
    assert seed_like.count_params() == lenet().count_params()
    assert [type(a) for a in seed_like.layers] == [type(b) for b in lenet().layers]
    assert ablation_cnn(**last, name="refined_cnn").get_config() == refined_cnn().get_config()


def test_each_ablation_step_adds_exactly_one_change():
    for (_, before), (_, after) in zip(ABLATION_STEPS[:-1], ABLATION_STEPS[1:-1]):
        assert set(before) < set(after) and len(set(after) - set(before)) == 1
    assert ABLATION_STEPS[-1][1] == ABLATION_STEPS[-2][1]  # the last step changes the schedule only


@pytest.mark.parametrize("index", [0, 1], ids=["lenet", "refined_cnn"])
def test_keras_round_trip_with_safe_mode(tmp_path, index):
    model = small_models()[index]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    x = raw_pixels(model, n=3)
    model.train_on_batch(x, np.array([0, 1, 2]))  # so that the optimizer state is saved too
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [layer.__class__.__name__ for layer in loaded.layers] == [layer.__class__.__name__ for layer in model.layers]
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)))


def brightness_coded(channels: int, n: int = 48, size: int = 48, seed: int = 0):
    """Synthetic images whose class is their mean brightness: learnable in a few steps, flips keep the label."""
    y = np.arange(n) % 6
    x = 20 + 40 * y[:, None, None, None] + np.random.default_rng(seed).normal(0, 10, (n, size, size, channels))
    return np.clip(x, 0, 255).astype("float32"), y


@pytest.mark.parametrize("index", [0, 1], ids=["lenet", "refined_cnn"])
def test_training_on_synthetic_images_lowers_the_loss(index):
    model = small_models()[index]
    x, y = brightness_coded(channels=model.inputs[0].shape[-1])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=8, epochs=10, verbose=0)
    after = model.evaluate(x, y, verbose=0)  # inference mode: no augmentation or dropout
    assert before == pytest.approx(np.log(6), abs=0.1)  # an untrained model guesses uniformly
    assert after < 0.9 * before
