"""Lesson 2 models: preprocessing, what is frozen, fine-tuning, inference mode, safe round trips.

No downloads: random weights (``weights=None``) and small inputs, so the suite stays quick. The
pretrained path (weights loaded into the base through ``defectlib.config.pretrained``) runs with
stand-in weights: a ``.weights.h5`` file saved from a randomly initialised base.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from defectlib.model_tools import calibrate_batch_norm, trainable_summary
from defectlib.transfer import NETWORKS, feature_extractor, head_model, split_at, transfer_model, unfreeze_top
from defectlib.config import pretrained

INPUT = (40, 40, 3)
SIZE = (32, 32)


def small(name: str = "mobilenet_v2", num_classes: int = 6) -> keras.Model:
    keras.utils.set_random_seed(0)
    return transfer_model(name, num_classes=num_classes, image_size=SIZE, input_shape=INPUT, weights=None)


def head_weight_ids(model: keras.Model) -> set[int]:
    return {id(w) for name in ("pool", "dropout", "classifier") for w in model.get_layer(name).weights}


def batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in model.get_layer("base").layers if isinstance(layer, keras.layers.BatchNormalization)]


def fit_one_step(model: keras.Model, num_classes: int = 6) -> None:
    """One real ``fit`` step (compiled again first, as after any change of ``trainable``)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, *INPUT)).astype("float32")
    y = rng.integers(0, num_classes, 8)
    # run_eagerly only skips tracing a graph (seconds on a small CPU); the layers run the same way.
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy", run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def values(weights) -> list[np.ndarray]:
    return [np.array(w) for w in weights]


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def built(request) -> tuple[str, keras.Model]:
    """One freshly built model of each kind, shared by the tests that do not change it."""
    return request.param, small(request.param)


def test_preprocessing_inside_the_model_maps_pixels_to_minus_one_one(built):
    name, model = built
    preprocessed = keras.Model(model.input, model.get_layer("preprocess").output)
    images = np.stack([np.full(INPUT, 0.0), np.full(INPUT, 127.5), np.full(INPUT, 255.0)]).astype("float32")
    out = np.asarray(preprocessed(images))
    assert out.shape == (3, *SIZE, 3)
    np.testing.assert_allclose(out[0], -1.0, atol=1e-6)
    np.testing.assert_allclose(out[1], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[2], 1.0, atol=1e-6)
    # The same scaling as the network's own preprocess_input.
    module = {"mobilenet_v2": keras.applications.mobilenet_v2, "resnet50_v2": keras.applications.resnet_v2}[name]
    pixels = np.linspace(0, 255, 12, dtype="float32").reshape(1, 2, 2, 3)
    np.testing.assert_allclose(np.asarray(model.get_layer("preprocess")(pixels)),
                               module.preprocess_input(pixels.copy()), atol=1e-6)


def test_built_model_trains_only_the_head(built):
    _, model = built
    base = model.get_layer("base")
    assert not base.trainable
    assert base.trainable_weights == []
    assert not any(layer.trainable for layer in base.layers)
    assert {id(w) for w in model.trainable_weights} == head_weight_ids(model)
    summary = trainable_summary(model)
    features = base.output.shape[-1]
    assert summary.loc["base", "trainable"] == 0
    assert summary.loc["total", "trainable"] == summary.loc["classifier", "trainable"] == features * 6 + 6
    assert summary.loc["total"].sum() == model.count_params()


def test_unfreeze_top_unfreezes_exactly_the_top_layers_but_not_batch_norm():
    model = small()
    base = model.get_layer("base")
    for n in (20, 10, 0):  # each call starts again from a fully frozen base
        unfrozen = unfreeze_top(model, n)
        expected = [layer.name for layer in base.layers[len(base.layers) - n:]
                    if not isinstance(layer, keras.layers.BatchNormalization)]
        assert unfrozen == expected
        assert [layer.name for layer in base.layers if layer.trainable] == expected
        assert not any(layer.trainable for layer in batch_norms(model))
        # What fit will update: the weights of the unfrozen layers and the head, nothing else.
        wanted = head_weight_ids(model) | {id(w) for layer in base.layers if layer.name in expected
                                           for w in layer.weights}
        assert {id(w) for w in model.trainable_weights} == wanted
        assert (trainable_summary(model).loc["base", "trainable"] > 0) == any(
            base.get_layer(name).weights for name in expected)
    with pytest.raises(ValueError, match="n_layers"):
        unfreeze_top(model, len(base.layers) + 1)
    with pytest.raises(ValueError, match="unknown base"):
        transfer_model("vgg16", weights=None)


def test_base_runs_in_inference_mode_while_training():
    model = small()
    base = model.get_layer("base")
    norms = batch_norms(model)
    stats = [values([layer.moving_mean, layer.moving_variance]) for layer in norms]
    base_before = values(base.weights)
    head_before = values(model.get_layer("classifier").weights)

    fit_one_step(model)  # frozen base: only the head changes
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, values(model.get_layer("classifier").weights)))
    for before, after in zip(base_before, values(base.weights)):
        np.testing.assert_array_equal(before, after)

    unfreeze_top(model, 20)
    lower_before = values(base.layers[1].weights)
    fit_one_step(model)  # fine-tuning: BatchNormalization statistics and the lower layers stay as they were
    for layer, before in zip(norms, stats):
        np.testing.assert_array_equal(before, values([layer.moving_mean, layer.moving_variance]), err_msg=layer.name)
    for before, after in zip(lower_before, values(base.layers[1].weights)):
        np.testing.assert_array_equal(before, after)
    # Frozen BatchNormalization ignores training=True: the base gives the same output in both modes.
    x = np.random.default_rng(1).uniform(-1, 1, (4, *SIZE, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(base(x, training=True)), np.asarray(base(x, training=False)), atol=1e-6)

    # Control: the check above can fail. Keras 3 lets fit's training=True override the training=False the
    # base was called with, so a BatchNormalization layer that is trainable does update its statistics.
    first = norms[0]
    first.trainable = True
    mean_before = np.array(first.moving_mean)
    fit_one_step(model)
    assert not np.array_equal(mean_before, np.array(first.moving_mean))


def test_round_trip_through_keras_file_with_safe_mode(built, tmp_path):
    name, model = built
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).uniform(0, 255, (3, *INPUT)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert not loaded.get_layer("base").trainable
    assert {id(w) for w in loaded.trainable_weights} == head_weight_ids(loaded)
    assert loaded.get_layer("preprocess").get_config()["scale"] == pytest.approx(1 / 127.5)


def test_two_builds_have_the_same_configuration_and_it_records_what_is_frozen():
    # The lesson asserts that its page builders equal these ones by comparing get_config().
    assert small().get_config() == small().get_config()
    a, b = small(), small()
    unfreeze_top(a, 10)
    assert a.get_config() != b.get_config()  # the trainable flags are part of the configuration
    unfreeze_top(b, 10)
    assert a.get_config() == b.get_config()


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory):
    """A MobileNetV2 base (include_top=False) with random weights, saved as a .weights.h5 file."""
    keras.utils.set_random_seed(123)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(*SIZE, 3))
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_stand_in.weights.h5"
    base.save_weights(path)
    return path, values(base.weights)


def test_pretrained_path_with_stand_in_weights(stand_in_weights, tmp_path, monkeypatch):
    path, saved = stand_in_weights
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "0")
    keras.utils.set_random_seed(0)  # another seed than the stand-in's: loading must replace these weights
    # The lesson's call; the download ("imagenet") is replaced by the file of stand-in weights.
    model, has_weights = pretrained(
        lambda weights: transfer_model("mobilenet_v2", image_size=SIZE, input_shape=INPUT,
                                       weights=path if weights == "imagenet" else weights), "MobileNetV2")
    assert has_weights
    base = model.get_layer("base")
    loaded = values(base.weights)
    assert len(loaded) == len(saved) == 260  # kernels, BatchNormalization scales, shifts and statistics
    for a, b in zip(loaded, saved):
        np.testing.assert_array_equal(a, b)
    fresh = values(small().get_layer("base").weights)  # control: a random build differs from the stand-in
    assert any(not np.array_equal(a, b) for a, b in zip(fresh, saved))

    # Frozen, with the new head on top: only the classifier trains.
    assert not base.trainable and base.trainable_weights == []
    assert {id(w) for w in model.trainable_weights} == head_weight_ids(model)
    assert model.output_shape == (None, 6)
    assert trainable_summary(model).loc["total", "trainable"] == 1280 * 6 + 6

    # The head trains, the loaded base does not move.
    head_before = values(model.get_layer("classifier").weights)
    fit_one_step(model)
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, values(model.get_layer("classifier").weights)))
    for a, b in zip(values(base.weights), saved):
        np.testing.assert_array_equal(a, b)

    # Saved as .keras, loaded with safe_mode=True: the same weights, the same predictions.
    file = tmp_path / "stand_in.keras"
    model.save(file)
    reloaded = keras.saving.load_model(file, safe_mode=True)
    for a, b in zip(values(reloaded.get_layer("base").weights), saved):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(3).uniform(0, 255, (4, *INPUT)).astype("float32")
    np.testing.assert_allclose(np.asarray(reloaded(x, training=False)), np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-6)
    assert {id(w) for w in reloaded.trainable_weights} == head_weight_ids(reloaded)


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras's notes on the layers it cannot match
def test_weights_of_another_network_are_refused(stand_in_weights):
    path, _ = stand_in_weights
    with pytest.raises(ValueError):
        transfer_model("resnet50_v2", image_size=SIZE, input_shape=INPUT, weights=path)


def test_features_and_head_compose_to_the_model(built):
    _, model = built
    extractor, head = feature_extractor(model), head_model(model)
    assert head.get_layer("classifier") is model.get_layer("classifier")
    assert extractor.trainable_weights == [] and head.trainable_weights == model.trainable_weights
    x = np.random.default_rng(4).uniform(0, 255, (5, *INPUT)).astype("float32")
    np.testing.assert_allclose(np.asarray(head(extractor(x, training=False), training=False)),
                               np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)


def test_head_trained_on_cached_features_equals_the_head_trained_end_to_end():
    """Phase 1 on features computed once takes the same steps as phase 1 on the images."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x = rng.uniform(0, 255, (24, *INPUT)).astype("float32")
    y = rng.integers(0, 6, 24)

    def batches(inputs):  # the same seeded shuffle for images and features: the same batches
        return tf.data.Dataset.from_tensor_slices((inputs, y)).shuffle(24, seed=7).batch(8)

    def trained(cached: bool) -> keras.Model:
        model = small()  # seeded: the same initial weights and the same dropout masks in both runs
        calibrate_batch_norm(model, x)  # random weights: give the features a sensible scale
        trainee = head_model(model) if cached else model
        inputs = feature_extractor(model).predict(x, verbose=0) if cached else x
        # run_eagerly only skips tracing a graph (seconds on a small CPU); the layers run the same way.
        trainee.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                        run_eagerly=True)
        trainee.fit(batches(inputs), epochs=3, verbose=0)
        return model

    end_to_end, cached = trained(cached=False), trained(cached=True)
    # Equal up to float rounding: the base computes each image's features in other batches in the two runs,
    # and Adam rescales the smallest gradients, so the last digits may differ.
    for a, b in zip(values(end_to_end.get_layer("classifier").weights), values(cached.get_layer("classifier").weights)):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-4)
    p_cached, p_end_to_end = np.asarray(cached(x, training=False)), np.asarray(end_to_end(x, training=False))
    np.testing.assert_allclose(p_cached, p_end_to_end, rtol=0, atol=2e-4)
    assert np.array_equal(p_cached.argmax(axis=1), p_end_to_end.argmax(axis=1))
    # Controls: the features vary, and the head did train (the comparison is not between untouched heads).
    assert feature_extractor(cached).predict(x, verbose=0).std(axis=0).mean() > 0.01
    moved = np.abs(values(small().get_layer("classifier").weights)[0] - values(cached.get_layer("classifier").weights)[0])
    assert moved.mean() > 1e-3


CUTS = {"mobilenet_v2": ("block_14_add", 20), "resnet50_v2": ("conv5_block2_out", 13)}  # lesson 2's cuts


def test_split_at_composes_to_the_model_and_shares_its_layers(built):
    name, model = built
    cut, n_layers = CUTS[name]
    unfreeze_top(model, n_layers)
    try:
        below, above = split_at(model, cut)
        assert below.trainable_weights == []  # everything trainable is above the cut
        assert {id(w) for w in above.trainable_weights} == {id(w) for w in model.trainable_weights}
        x = np.random.default_rng(6).uniform(0, 255, (3, *INPUT)).astype("float32")
        np.testing.assert_allclose(np.asarray(above(below(x))), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    finally:
        unfreeze_top(model, 0)
        model.get_layer("base").trainable = False


def test_fine_tuning_above_the_cut_equals_fine_tuning_end_to_end():
    """Phase 2 on activations computed once takes the same steps as phase 2 on the images."""
    import tensorflow as tf

    rng = np.random.default_rng(8)
    x = rng.uniform(0, 255, (16, *INPUT)).astype("float32")
    y = rng.integers(0, 6, 16)

    def trained(cached: bool) -> keras.Model:
        model = small("resnet50_v2")  # seeded: the same initial weights and dropout masks in both runs
        calibrate_batch_norm(model, x)
        unfreeze_top(model, 13)
        below, above = split_at(model, "conv5_block2_out")
        trainee, inputs = (above, below.predict(x, verbose=0)) if cached else (model, x)
        trainee.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                        run_eagerly=True)
        trainee.fit(tf.data.Dataset.from_tensor_slices((inputs, y)).shuffle(16, seed=3).batch(8), epochs=2, verbose=0)
        return model

    end_to_end, cached = trained(cached=False), trained(cached=True)
    for a, b in zip(values(end_to_end.trainable_weights), values(cached.trainable_weights)):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-4)
    np.testing.assert_allclose(np.asarray(cached(x)), np.asarray(end_to_end(x)), rtol=0, atol=2e-4)
    # Controls: the top block did train, and the layers below the cut did not.
    start = small("resnet50_v2").get_layer("base")
    trained_base = cached.get_layer("base")
    moved = np.abs(values(start.get_layer("conv5_block3_2_conv").weights)[0]
                   - values(trained_base.get_layer("conv5_block3_2_conv").weights)[0])
    assert moved.max() > 1e-3
    for layer in ("conv5_block2_2_conv", "conv2_block1_1_conv"):
        for a, b in zip(values(start.get_layer(layer).weights), values(trained_base.get_layer(layer).weights)):
            assert np.array_equal(a, b), layer
