"""Lesson 3's helpers around the transformers: augmentation, the optimizer, the pretrained KerasHub ViT.

The transformers themselves are built on lesson 3's page (generated into :mod:`defectlib.vit`).
"""

from __future__ import annotations

# At module level: importing this module registers SelectToken, so that safe-mode loading finds it.
import keras

from defectlib.config import pretrained


VIT_PRESET = "vit_base_patch16_224_imagenet"
"""The KerasHub ImageNet ViT-B/16 (224x224) used by :func:`pretrained_vit`."""


@keras.saving.register_keras_serializable(package="defectlib")
class SelectToken(keras.layers.Layer):
    """Keep one token of a sequence (``index`` 0: the class token of a KerasHub ViT).

    >>> tuple(SelectToken()(keras.ops.zeros((2, 5, 8))).shape)
    (2, 8)
    """

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, tokens):
        return tokens[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}


def vit_augmentation(translate: float = 0.1, name: str = "augment", input_shape: tuple[int, ...] | None = None):
    """Random flips (both axes) and, if ``translate``, shifts of up to that fraction: label-preserving for NEU.

    ``RandomTranslation`` has no XLA kernel: with ``jit_compile="auto"`` it turns XLA off for the whole model.

    >>> [layer.__class__.__name__ for layer in vit_augmentation().layers]
    ['RandomFlip', 'RandomTranslation']
    """
    stack = [keras.layers.RandomFlip("horizontal_and_vertical", name=f"{name}_flip")]
    if translate:
        stack.append(keras.layers.RandomTranslation(translate, translate, fill_mode="reflect", name=f"{name}_shift"))
    if input_shape is not None:
        stack.insert(0, keras.Input(input_shape, name=f"{name}_input"))
    return keras.Sequential(stack, name=name)


def stem_strides(patch_size: int) -> list[int]:
    """Split a patch size into the strides of a convolutional stem (4 first).

    >>> stem_strides(20), stem_strides(16), stem_strides(8)
    ([4, 5], [4, 4], [4, 2])
    """
    strides, rest = [], int(patch_size)
    for factor in (4, 2, 3, 5, 7):
        while rest % factor == 0 and rest > 1:
            strides.append(factor)
            rest //= factor
    return strides + ([rest] if rest > 1 else [])


SMALL_VIT_CONFIG = {"image_shape": (64, 64, 3), "patch_size": 16, "num_layers": 2, "num_heads": 2,
                    "hidden_dim": 64, "mlp_dim": 128}
"""A tiny KerasHub ``ViTBackbone`` configuration: the random-weights stand-in of fast mode offline."""


VIT_B16_CONFIG = {"image_shape": (224, 224, 3), "patch_size": 16, "num_layers": 12, "num_heads": 12,
                  "hidden_dim": 768, "mlp_dim": 3072}
"""ViT-B/16's architecture (Dosovitskiy et al. 2021): with random weights, the preset's size and speed."""


def vit_classifier(backbone, num_classes: int = 6, input_shape: tuple[int, int, int] = (200, 200, 1),
                   dropout: float = 0.1, name: str = "vit_pretrained"):
    """A classifier around a frozen KerasHub ``ViTBackbone``: NEU pixels in, class probabilities out.

    Pixels are scaled to [-1, 1], as the presets expect; the backbone runs in inference mode.

    >>> import keras_hub
    >>> model = vit_classifier(keras_hub.models.ViTBackbone(**SMALL_VIT_CONFIG), input_shape=(48, 48, 1))
    >>> model.output_shape, [w.path for w in model.trainable_weights]
    ((None, 6), ['classifier/kernel', 'classifier/bias'])
    """
    backbone.trainable = False
    layers = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    x = layers.Resizing(*backbone.image_shape[:2], interpolation="bilinear", antialias=True, name="resize")(x)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    x = backbone(x, training=False)
    x = SelectToken(0, name="class_token")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def pretrained_vit(num_classes: int = 6, input_shape: tuple[int, int, int] = (200, 200, 1),
                   preset: str = VIT_PRESET, dropout: float = 0.1):
    """A KerasHub ViT pretrained on ImageNet, frozen, with a new head: returns ``(model, has_pretrained_weights)``.

    Offline, a preset name falls back to a small random backbone in fast mode (:func:`pretrained`).

    Parameters
    ----------
    preset : a KerasHub preset name (downloaded once) or a local preset folder (no download).

    >>> model, real = pretrained_vit(input_shape=(48, 48, 1), preset=_doctest_preset())  # a local stand-in
    >>> real, model.name, model.output_shape
    (True, 'vit_pretrained', (None, 6))
    """
    from pathlib import Path

    import keras_hub

    def build(weights):
        if weights is None:
            backbone = keras_hub.models.ViTBackbone(**SMALL_VIT_CONFIG, name="vit_backbone")
        else:  # "imagenet": the preset by name; else a local preset folder (DEFECTLIB_WEIGHTS_DIR)
            backbone = keras_hub.models.ViTBackbone.from_preset(preset if weights == "imagenet" else weights)
        return vit_classifier(backbone, num_classes, input_shape, dropout,
                              name="vit_pretrained" if weights else "vit_random_small")

    if Path(preset).is_dir():
        return build(str(preset)), True
    return pretrained(build, f"the KerasHub ViT preset {preset!r}", file=preset)


def vit_backbone(model):
    """The KerasHub ``ViTBackbone`` inside a model built by :func:`pretrained_vit`."""
    import keras_hub

    found = [layer for layer in model.layers if isinstance(layer, keras_hub.models.ViTBackbone)]
    if len(found) != 1:
        raise ValueError(f"{model.name} has {len(found)} ViTBackbone layers, expected one")
    return found[0]


def _doctest_preset() -> str:
    """A local stand-in preset (the small random configuration) for the doctests: no download."""
    import tempfile

    import keras_hub

    folder = tempfile.mkdtemp(prefix="vit-preset-")
    keras_hub.models.ViTBackbone(**SMALL_VIT_CONFIG, name="vit_backbone").save_to_preset(folder)
    return folder


def transformer_optimizer(total_steps: int, learning_rate: float = 1e-3, weight_decay: float = 0.05,
                          warmup_fraction: float = 0.1):
    """AdamW with a linear warm-up from ``learning_rate / 100``, then a cosine decay to zero.

    >>> optimizer = transformer_optimizer(total_steps=100, learning_rate=1e-3)
    >>> type(optimizer).__name__, float(optimizer.learning_rate) < 1e-3  # step 0: still warming up
    ('AdamW', True)
    """
    warmup = max(1, int(warmup_fraction * total_steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 100, decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate, warmup_steps=warmup)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


def jit_default() -> bool | str:
    """``"auto"`` (XLA) when a GPU is visible, ``False`` on a CPU (where XLA was slower).

    >>> jit_default() in ("auto", False)
    True
    """
    import tensorflow as tf

    return "auto" if tf.config.list_physical_devices("GPU") else False


def compile_transformer(model, total_steps: int, learning_rate: float = 1e-3, weight_decay: float = 0.05,
                        warmup_fraction: float = 0.1, jit_compile: bool | str | None = None):
    """Compile with :func:`transformer_optimizer`, sparse cross-entropy, accuracy; ``jit_compile=None``: :func:`jit_default`.

    >>> from defectlib.vit import build_vit
    >>> model = compile_transformer(build_vit(image_size=(16, 16), patch_size=8, hidden_dim=8, num_heads=2,
    ...                                       num_layers=1, mlp_dim=8), total_steps=100)
    >>> type(model.optimizer).__name__
    'AdamW'
    """
    model.compile(optimizer=transformer_optimizer(total_steps, learning_rate, weight_decay, warmup_fraction),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"],
                  jit_compile=jit_default() if jit_compile is None else jit_compile)
    return model
