"""Lesson 3's transformers: shapes, learnable position embeddings, safe .keras round trips, the offline rule."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from defectlib import vit, vit_tools  # noqa: E402

SMALL = {"hidden_dim": 16, "num_heads": 2, "num_layers": 1, "mlp_dim": 32}


def _images(n: int = 3, size: int = 32, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, channels)).astype("float32")


@pytest.mark.parametrize(("size", "patch"), [((32, 32), 8), ((40, 60), 10), ((64, 64), 16)])
def test_vit_patch_count_and_embedding_size(size, patch):
    model = vit.build_vit(image_size=size, patch_size=patch, **SMALL)
    tokens = model.get_layer("patch_embedding").output.shape
    assert tuple(tokens) == (None, (size[0] // patch) * (size[1] // patch), SMALL["hidden_dim"])
    for i in range(SMALL["num_layers"]):
        assert tuple(model.get_layer(f"block{i + 1}").output.shape) == tuple(tokens)


def test_vit_outputs_a_softmax():
    model = vit.build_vit(image_size=(32, 32), patch_size=8, num_classes=6, **SMALL)
    probabilities = np.asarray(model(_images(), training=False))
    assert probabilities.shape == (3, 6)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_patch_size_must_divide_the_image():
    with pytest.raises(ValueError, match="do not split into 8-pixel patches"):
        vit.build_vit(image_size=(30, 30), patch_size=8, **SMALL)


def test_position_embeddings_are_learnable_and_shaped_per_token():
    model = vit.build_vit(image_size=(32, 32), patch_size=8, **SMALL)
    layer = model.get_layer("position_embedding")
    assert tuple(layer.embedding.shape) == (16, SMALL["hidden_dim"])
    assert any(w is layer.embedding for w in model.trainable_weights)
    before = np.array(layer.embedding.numpy())
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.train_on_batch(_images(), np.array([0, 1, 2]))
    assert not np.allclose(before, layer.embedding.numpy()), "one training step did not change them"


def test_conv_stem_gives_the_same_tokens_from_convolutions():
    plain = vit.build_vit(image_size=(40, 40), patch_size=20, **SMALL)
    stem = vit.build_vit(image_size=(40, 40), patch_size=20, conv_stem=True, **SMALL)
    assert stem.get_layer("patch_embedding").output.shape == plain.get_layer("patch_embedding").output.shape
    strides = [layer.strides[0] for layer in stem.layers if layer.name.startswith("stem_conv")]
    assert int(np.prod(strides)) == 20 and len(strides) > 1


def _moved(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The (H, W, C) image with its content moved dy rows down and dx columns right, zeros moved in."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        image[max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    return out


@pytest.mark.parametrize("shift", [1, 2, 3])
def test_diagonal_shifts_match_a_hand_made_shift(shift):
    images = _images(n=2, size=8, channels=2)
    views = keras.ops.convert_to_numpy(vit.diagonal_shifts(images, shift))
    assert views.shape == (2, 8, 8, 10)
    for i, image in enumerate(images):
        expected = [image] + [_moved(image, dy, dx) for dy, dx in
                              ((shift, shift), (shift, -shift), (-shift, shift), (-shift, -shift))]
        np.testing.assert_array_equal(views[i], np.concatenate(expected, axis=-1))


def test_shifted_patch_embedding_is_norm_then_projection_of_each_stacked_patch():
    images = _images(n=2, size=12)
    layer = vit.ShiftedPatchEmbedding(patch_size=4, hidden_dim=5)
    tokens = keras.ops.convert_to_numpy(layer(images))
    assert tokens.shape == (2, 9, 5) and layer.projection.kernel.shape == (4 * 4 * 5, 5)
    stacked = np.concatenate([images[1]] + [_moved(images[1], dy, dx) for dy, dx in ((2, 2), (2, -2), (-2, 2), (-2, -2))],
                             axis=-1)
    patch = stacked[4:8, 8:12].reshape(-1)  # patch row 1, column 2: token 1 * 3 + 2 = 5
    normed = (patch - patch.mean()) / np.sqrt(patch.var() + 1e-6)  # LayerNormalization starts as gamma 1, beta 0
    expected = normed @ keras.ops.convert_to_numpy(layer.projection.kernel) + keras.ops.convert_to_numpy(
        layer.projection.bias)
    np.testing.assert_allclose(tokens[1, 5], expected, rtol=1e-4, atol=1e-4)


def test_downsample_and_shifted_patches_in_the_vit():
    model = vit.build_vit_spt(image_size=(64, 64), patch_size=8, downsample=2, **SMALL)
    names = [layer.name for layer in model.layers]
    assert names.index("downsample") < names.index("augment") < names.index("patch_embedding")
    assert model.get_layer("augment").input.shape == (None, 32, 32, 1)
    assert isinstance(model.get_layer("patch_embedding"), vit.ShiftedPatchEmbedding)
    assert tuple(model.get_layer("patch_embedding").output.shape) == (None, 16, SMALL["hidden_dim"])
    plain = vit.build_vit_spt(image_size=(64, 64), patch_size=8, downsample=2, shifted=False, **SMALL)
    assert type(plain.get_layer("patch_embedding")) is vit.PatchEmbedding  # the benchmark's vit_pooled


def test_hybrid_shapes():
    model = vit.hybrid(image_size=(64, 64), stem_filters=(8, 16, 24), **SMALL)
    assert tuple(model.get_layer("patch_embedding").output.shape) == (None, 4 * 4, SMALL["hidden_dim"])
    assert model.output_shape == (None, 6)
    assert any("_res_add" in layer.name for layer in model.layers), "the stem has no residual block"


@pytest.mark.parametrize("build", [
    lambda: vit.build_vit(image_size=(32, 32), patch_size=8, **SMALL),
    lambda: vit.build_vit(image_size=(32, 32), patch_size=8, conv_stem=True, augment=True, **SMALL),
    lambda: vit.build_vit_spt(image_size=(32, 32), patch_size=4, downsample=2, **SMALL),
    lambda: vit.hybrid(image_size=(32, 32), stem_filters=(8, 16), **SMALL),
], ids=["vit", "vit_conv_stem_augmented", "vit_pooled_spt_augmented", "hybrid"])
def test_save_and_load_with_safe_mode(build, tmp_path):
    model = build()
    x = _images()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert not [layer for layer in loaded.layers if isinstance(layer, keras.layers.Lambda)]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert loaded.count_params() == model.count_params()


def test_the_preset_exists_in_keras_hub():
    keras_hub = pytest.importorskip("keras_hub")
    assert vit_tools.VIT_PRESET in keras_hub.models.ViTBackbone.presets


def test_pretrained_vit_offline_fast_uses_a_small_random_backbone(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DEFECTLIB_FAST", "1")
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")
    model, real = vit_tools.pretrained_vit(input_shape=(48, 48, 1))
    assert real is False
    assert "RANDOM weights" in capsys.readouterr().out
    backbone = next(layer for layer in model.layers if layer.__class__.__name__ == "ViTBackbone")
    assert backbone.trainable is False and backbone.count_params() < 200_000
    assert model.output_shape == (None, 6)
    _assert_round_trip(model, tmp_path)


def _assert_round_trip(model, tmp_path):
    """Saved as .keras and loaded with safe_mode=True, the model predicts the same."""
    x = _images(2, 48)
    path = tmp_path / "vit_pretrained.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_pretrained_vit_offline_full_mode_refuses_random_weights(monkeypatch):
    monkeypatch.setenv("DEFECTLIB_FAST", "0")
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="pretrained weights"):
        vit_tools.pretrained_vit()


@pytest.fixture
def stand_in_preset(tmp_path):
    """A small ViTBackbone saved as a local KerasHub preset: the real loading path, no download."""
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ViTBackbone(**vit_tools.SMALL_VIT_CONFIG, name="vit_backbone")
    folder = tmp_path / "preset"
    backbone.save_to_preset(str(folder))
    return folder, backbone


def test_pretrained_vit_loads_a_local_preset_and_round_trips_safely(stand_in_preset, monkeypatch, tmp_path):
    # Offline and in full mode: a preset name would raise, a local preset must take the real path.
    monkeypatch.setenv("DEFECTLIB_FAST", "0")
    monkeypatch.setenv("DEFECTLIB_OFFLINE", "1")
    folder, saved = stand_in_preset
    model, real = vit_tools.pretrained_vit(input_shape=(48, 48, 1), preset=str(folder))
    assert real is True and model.name == "vit_pretrained"
    backbone = vit_tools.vit_backbone(model)
    assert backbone.trainable is False
    for mine, theirs in zip(backbone.weights, saved.weights):  # the preset's weights, not fresh random ones
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    assert [w.path for w in model.trainable_weights] == ["classifier/kernel", "classifier/bias"]
    _assert_round_trip(model, tmp_path)


def test_fine_tuning_unfreezes_only_the_top_blocks(stand_in_preset):
    folder, _ = stand_in_preset
    model, _ = vit_tools.pretrained_vit(input_shape=(48, 48, 1), preset=str(folder))
    paths = vit.unfreeze_vit_top(model, 1)
    assert paths == [w.path for w in model.trainable_weights]
    blocks = vit_tools.vit_backbone(model).get_layer("vit_encoder").encoder_layers
    assert {w.path for w in blocks[1].weights} <= set(paths)       # the top block trains...
    assert not {w.path for w in blocks[0].weights} & set(paths)    # ...the one below does not
    assert "vit_encoder/ln/gamma" in paths and not any("patching" in p for p in paths)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    frozen = np.array(vit_tools.vit_backbone(model).get_layer("vit_encoder").encoder_layers[0].weights[0])
    top = np.array(vit_tools.vit_backbone(model).get_layer("vit_encoder").encoder_layers[1].weights[2])
    model.train_on_batch(_images(4, 48), np.array([0, 1, 2, 3]))
    encoder = vit_tools.vit_backbone(model).get_layer("vit_encoder")
    np.testing.assert_array_equal(frozen, np.asarray(encoder.encoder_layers[0].weights[0]))
    assert not np.allclose(top, np.asarray(encoder.encoder_layers[1].weights[2])), "the top block did not train"
    with pytest.raises(ValueError, match="blocks"):
        vit.unfreeze_vit_top(model, 3)


def test_transformer_optimizer_warms_up_then_decays():
    optimizer = vit_tools.transformer_optimizer(total_steps=100, learning_rate=1e-3)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 10, 55, 100)]
    assert rates[0] == pytest.approx(1e-5) and rates[1] == pytest.approx(1e-3)
    assert rates[1] > rates[2] > rates[3] and rates[3] == pytest.approx(0, abs=1e-8)


def test_head_on_cached_class_tokens_composes_to_the_pretrained_vit(stand_in_preset):
    # Lesson 3 trains ViT-B/16's head as lesson 2 trains a CNN's: on the frozen backbone's class token, computed once.
    from defectlib.transfer import feature_extractor, head_model

    folder, _ = stand_in_preset
    model, _ = vit_tools.pretrained_vit(input_shape=(48, 48, 1), preset=str(folder))
    extractor, head = feature_extractor(model, "class_token"), head_model(model, "class_token")
    assert extractor.trainable_weights == [] and head.trainable_weights == model.trainable_weights
    x = _images(3, 48) * 255
    tokens = extractor.predict(x, verbose=0)
    assert tokens.shape == (3, vit_tools.SMALL_VIT_CONFIG["hidden_dim"]) and tokens.std() > 0
    np.testing.assert_allclose(head.predict(tokens, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # The lesson gets the class tokens from the tokens at split_vit's cut, through the frozen top (phase 1).
    below, above = vit.split_vit(model)
    at_cut = below.predict(x, verbose=0)
    np.testing.assert_allclose(above.get_layer("top").predict(at_cut, verbose=0), tokens, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(above.predict(at_cut, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_fine_tuning_above_split_vit_equals_fine_tuning_end_to_end(stand_in_preset):
    """Lesson 3's ViT-B/16 phase 2 on tokens computed once takes the same steps as on the images."""
    folder, _ = stand_in_preset
    x = _images(16, 48) * 255
    y = np.arange(16) % 6

    def trained(cached: bool):
        keras.utils.set_random_seed(0)  # the same head, and the same dropout masks, in both runs
        model, _ = vit_tools.pretrained_vit(input_shape=(48, 48, 1), preset=str(folder))
        vit.unfreeze_vit_top(model, 1)
        below, above = vit.split_vit(model)
        if cached:
            assert below.trainable_weights == []
            assert {id(w) for w in above.trainable_weights} == {id(w) for w in model.trainable_weights}
        trainee, inputs = (above, below.predict(x, verbose=0)) if cached else (model, x)
        trainee.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        trainee.fit(inputs, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model

    end_to_end, cached = trained(cached=False), trained(cached=True)
    for a, b in zip(end_to_end.trainable_weights, cached.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-4)
    np.testing.assert_allclose(cached.predict(x, verbose=0), end_to_end.predict(x, verbose=0), rtol=0, atol=1e-4)
    start, _ = vit_tools.pretrained_vit(input_shape=(48, 48, 1), preset=str(folder))
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in
             zip(vit_tools.vit_backbone(start).get_layer("vit_encoder").encoder_layers[-1].weights,
                 vit_tools.vit_backbone(cached).get_layer("vit_encoder").encoder_layers[-1].weights)]
    assert max(moved) > 1e-4, "the last block did not train"


def test_split_vit_refuses_a_backbone_with_dropout():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ViTBackbone(**vit_tools.SMALL_VIT_CONFIG, dropout_rate=0.1, name="vit_backbone")
    with pytest.raises(ValueError, match="dropout below the cut"):
        vit.split_vit(vit_tools.vit_classifier(backbone, input_shape=(48, 48, 1)))
