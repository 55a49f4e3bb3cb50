"""Lesson 3: Vision Transformer layers and builders, the hybrid, and the pretrained KerasHub ViT."""

from __future__ import annotations

# Keras is imported at module level here (and not inside the builders, as in cnn.py and transfer.py)
# because the custom layers below are classes: defining them registers them, so that
# `keras.saving.load_model(path, safe_mode=True)` finds them once `defectlib.vit` is imported.
import keras

from defectlib.weights import pretrained

VIT_PRESET = "vit_base_patch16_224_imagenet"
"""The KerasHub ImageNet ViT used by :func:`pretrained_vit` (ViT-B/16, 224x224, 86 M parameters)."""


def _patch_grid(input_shape, patch_size: int) -> tuple[int, int]:
    """(rows, columns) of ``patch_size`` patches in images of ``input_shape`` (batch, H, W, C)."""
    height, width = input_shape[1], input_shape[2]
    if height % patch_size or width % patch_size:
        raise ValueError(f"image {height}x{width} is not divisible into {patch_size}x{patch_size} "
                         "patches: choose a patch size that divides both sides")
    return height // patch_size, width // patch_size


@keras.saving.register_keras_serializable(package="defectlib")
class PatchEmbedding(keras.layers.Layer):
    """Cut images into ``patch_size`` squares and project each to a ``hidden_dim`` token.

    One strided convolution does both: a kernel of ``patch_size`` moved by
    ``patch_size`` sees each patch exactly once, and its filters are the linear
    projection. The output is the sequence of tokens, row by row:
    ``(batch, (H / p) * (W / p), hidden_dim)``. With ``patch_size=1`` it turns a
    feature map (from a convolutional stem) into tokens, one per position.

    Examples
    --------
    >>> layer = PatchEmbedding(patch_size=10, hidden_dim=32)
    >>> tuple(layer(keras.ops.zeros((2, 40, 60, 1))).shape)
    (2, 24, 32)
    """

    def __init__(self, patch_size: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.hidden_dim = int(hidden_dim)
        self.projection = keras.layers.Conv2D(self.hidden_dim, self.patch_size, strides=self.patch_size,
                                              padding="valid", name="projection")

    def build(self, input_shape):
        self.grid = _patch_grid(input_shape, self.patch_size)
        self.projection.build(input_shape)

    def call(self, images):
        features = self.projection(images)  # (batch, H/p, W/p, hidden_dim)
        return keras.ops.reshape(features, (-1, self.grid[0] * self.grid[1], self.hidden_dim))

    def compute_output_shape(self, input_shape):
        rows, cols = _patch_grid(input_shape, self.patch_size)
        return (input_shape[0], rows * cols, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim}


def diagonal_shifts(images, shift: int):
    """The images and four copies moved ``shift`` pixels diagonally, stacked on the channel axis.

    Copy order: the image, then its content moved down-right, down-left, up-right and
    up-left. Pixels moved in from outside the image are zero. ``(batch, H, W, C)``
    becomes ``(batch, H, W, 5 * C)``: the input of :class:`ShiftedPatchEmbedding`.

    Examples
    --------
    >>> image = keras.ops.reshape(keras.ops.arange(1.0, 10.0), (1, 3, 3, 1))
    >>> views = keras.ops.convert_to_numpy(diagonal_shifts(image, 1))
    >>> views[0, :, :, 0].tolist()  # the image itself
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    >>> views[0, :, :, 1].tolist()  # moved one pixel down and one right
    [[0.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 4.0, 5.0]]
    """
    s = int(shift)
    height, width = images.shape[1], images.shape[2]
    padded = keras.ops.pad(images, [[0, 0], [s, s], [s, s], [0, 0]])
    # The crop starting at (s - dy, s - dx) of the padded image is the image moved by (dy, dx).
    moved = [padded[:, s - dy:s - dy + height, s - dx:s - dx + width]
             for dy, dx in ((s, s), (s, -s), (-s, s), (-s, -s))]
    return keras.ops.concatenate([images, *moved], axis=-1)


@keras.saving.register_keras_serializable(package="defectlib")
class ShiftedPatchEmbedding(keras.layers.Layer):
    """Shifted Patch Tokenization (Lee, Lee & Song 2021): each token also sees its neighbours' pixels.

    The image and four copies moved half a patch diagonally (:func:`diagonal_shifts`)
    are cut into the same ``patch_size`` squares; each token is the flattened stack
    (``patch_size ** 2 * 5 * C`` values), layer-normalised and projected (``Dense``) to
    ``hidden_dim``. A patch's token thus already holds the pixels around it, which a
    plain :class:`PatchEmbedding` token only reaches through attention. Output as
    :class:`PatchEmbedding`: ``(batch, (H / p) * (W / p), hidden_dim)``.

    Examples
    --------
    >>> layer = ShiftedPatchEmbedding(patch_size=10, hidden_dim=32)
    >>> tuple(layer(keras.ops.zeros((2, 40, 60, 1))).shape), tuple(layer.projection.kernel.shape)
    ((2, 24, 32), (500, 32))
    """

    def __init__(self, patch_size: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.hidden_dim = int(hidden_dim)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")
        self.projection = keras.layers.Dense(self.hidden_dim, name="projection")

    def build(self, input_shape):
        self.grid = _patch_grid(input_shape, self.patch_size)
        self.patch_values = self.patch_size ** 2 * 5 * input_shape[-1]
        self.norm.build((None, None, self.patch_values))
        self.projection.build((None, None, self.patch_values))

    def call(self, images):
        p, (rows, cols) = self.patch_size, self.grid
        x = diagonal_shifts(images, p // 2)
        x = keras.ops.reshape(x, (-1, rows, p, cols, p, x.shape[-1]))  # split both axes into (patch, pixel)
        x = keras.ops.transpose(x, (0, 1, 3, 2, 4, 5))                  # (image, patch row, patch col, y, x, c)
        x = keras.ops.reshape(x, (-1, rows * cols, self.patch_values))   # one flattened stack per patch
        return self.projection(self.norm(x))

    def compute_output_shape(self, input_shape):
        rows, cols = _patch_grid(input_shape, self.patch_size)
        return (input_shape[0], rows * cols, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim}


@keras.saving.register_keras_serializable(package="defectlib")
class PositionEmbedding(keras.layers.Layer):
    """Add a learnable vector to each token position (the ``embedding`` weight, one row per token).

    Attention itself ignores order: without this layer, shuffling the patches would
    not change the output. The rows start small and random and are learned.

    Examples
    --------
    >>> layer = PositionEmbedding()
    >>> tuple(layer(keras.ops.zeros((2, 24, 32))).shape), tuple(layer.embedding.shape), layer.embedding.trainable
    ((2, 24, 32), (24, 32), True)
    """

    def __init__(self, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        self.embedding = self.add_weight(name="embedding", shape=(input_shape[1], input_shape[2]),
                                         initializer=keras.initializers.TruncatedNormal(stddev=self.stddev),
                                         trainable=True)

    def call(self, tokens):
        return tokens + self.embedding

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="defectlib")
class TransformerBlock(keras.layers.Layer):
    """One pre-norm transformer encoder block, from Keras layers.

    ``x + attention(norm(x))``, then ``x + mlp(norm(x))``: layer normalisation
    before each part, a residual connection around it. The attention is
    :class:`keras.layers.MultiHeadAttention` with ``num_heads`` heads of
    ``hidden_dim // num_heads`` dimensions; the MLP widens each token to
    ``mlp_dim`` (GELU) and projects it back. Tokens keep their shape.

    Examples
    --------
    >>> block = TransformerBlock(hidden_dim=32, num_heads=4, mlp_dim=64)
    >>> tuple(block(keras.ops.zeros((2, 24, 32))).shape)
    (2, 24, 32)
    """

    def __init__(self, hidden_dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim={hidden_dim} must be a multiple of num_heads={num_heads}")
        self.hidden_dim, self.num_heads, self.mlp_dim = int(hidden_dim), int(num_heads), int(mlp_dim)
        self.dropout, self.attention_dropout = float(dropout), float(attention_dropout)
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.attention = keras.layers.MultiHeadAttention(self.num_heads, key_dim=self.hidden_dim // self.num_heads,
                                                         dropout=self.attention_dropout, name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.mlp_in = keras.layers.Dense(self.mlp_dim, activation="gelu", name="mlp_in")
        self.mlp_out = keras.layers.Dense(self.hidden_dim, name="mlp_out")
        self.drop = keras.layers.Dropout(self.dropout)

    def build(self, input_shape):
        if input_shape[-1] != self.hidden_dim:
            raise ValueError(f"tokens of size {input_shape[-1]}, expected hidden_dim={self.hidden_dim}")
        self.norm1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm2.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_dim))

    def call(self, tokens, training=None):
        x = self.norm1(tokens)
        x = self.attention(x, x, training=training)
        tokens = tokens + self.drop(x, training=training)
        x = self.mlp_out(self.drop(self.mlp_in(self.norm2(tokens)), training=training))
        return tokens + self.drop(x, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout, "attention_dropout": self.attention_dropout}


@keras.saving.register_keras_serializable(package="defectlib")
class SelectToken(keras.layers.Layer):
    """Keep one token of a sequence (``index`` 0: the class token of a KerasHub ViT).

    Examples
    --------
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

    Active only in training (``model.fit``); at inference the images pass unchanged.
    Worth knowing: ``RandomTranslation`` has no XLA implementation, so with
    ``jit_compile="auto"`` one such layer switches XLA compilation off for the whole
    model (which matters on a GPU, where XLA speeds training up). With ``input_shape``
    the stack gets a named input (``<name>_input``), so two builds have equal configurations.

    Examples
    --------
    >>> [layer.__class__.__name__ for layer in vit_augmentation().layers]
    ['RandomFlip', 'RandomTranslation']
    >>> [layer.__class__.__name__ for layer in vit_augmentation(translate=0).layers]
    ['RandomFlip']
    """
    stack = [keras.layers.RandomFlip("horizontal_and_vertical", name=f"{name}_flip")]
    if translate:
        stack.append(keras.layers.RandomTranslation(translate, translate, fill_mode="reflect", name=f"{name}_shift"))
    if input_shape is not None:
        stack.insert(0, keras.Input(input_shape, name=f"{name}_input"))
    return keras.Sequential(stack, name=name)


def stem_strides(patch_size: int) -> list[int]:
    """Split a patch size into the strides of a convolutional stem (4 first).

    Examples
    --------
    >>> stem_strides(20), stem_strides(16), stem_strides(8)
    ([4, 5], [4, 4], [4, 2])
    """
    strides, rest = [], int(patch_size)
    for factor in (4, 2, 3, 5, 7):
        while rest % factor == 0 and rest > 1:
            strides.append(factor)
            rest //= factor
    return strides + ([rest] if rest > 1 else [])


def _encoder(x, hidden_dim: int, num_heads: int, num_layers: int, mlp_dim: int, dropout: float,
             num_classes: int):
    """Position embeddings, transformer blocks, final norm, average pooling and the softmax head."""
    layers = keras.layers
    x = PositionEmbedding(name="position_embedding")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(num_layers):
        x = TransformerBlock(hidden_dim, num_heads, mlp_dim, dropout=dropout, name=f"block{i + 1}")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="classifier")(x)


def vit(image_size: tuple[int, int] = (200, 200), patch_size: int = 20, hidden_dim: int = 64,
        num_heads: int = 4, num_layers: int = 4, mlp_dim: int = 128, num_classes: int = 6,
        conv_stem: bool = False, channels: int = 1, dropout: float = 0.1, augment: bool = False,
        downsample: int = 1, shifted_patches: bool = False, name: str | None = None):
    """A vision transformer for classification, built from scratch.

    Pixels ``0..255`` (``channels`` 1 for NEU's grayscale) are scaled to [-1, 1]
    (``preprocess``), cut into ``patch_size`` patches and embedded as
    ``hidden_dim`` tokens (:class:`PatchEmbedding`): ``(H / p) * (W / p)`` tokens.
    Learnable position embeddings are added, ``num_layers`` :class:`TransformerBlock`
    follow, and the tokens are layer-normalised, averaged (``pool``) and classified
    (``classifier``, softmax). With ``conv_stem`` the single patchifying convolution
    is replaced by a stack of convolutions (batch norm, ReLU) whose strides multiply
    to ``patch_size`` (20: stride 4, then 5; 8: stride 4, then 2), each with a kernel
    of ``2 * stride - 1`` so that neighbouring windows overlap, followed by a 1x1
    projection: the same tokens, but each one built by local filters first. ``augment`` puts
    :func:`vit_augmentation` in the model (active in training only). ``downsample`` first
    averages ``downsample`` x ``downsample`` pixel blocks (``AveragePooling2D``, before the
    augmentation, which then costs a quarter at 2), so ``patch_size`` counts pixels of the
    smaller image. ``shifted_patches`` embeds with :class:`ShiftedPatchEmbedding` instead of
    :class:`PatchEmbedding` (not with ``conv_stem``).

    Examples
    --------
    >>> model = vit(image_size=(32, 32), patch_size=8, hidden_dim=16, num_heads=2, num_layers=1, mlp_dim=32)
    >>> tuple(model.get_layer("patch_embedding").output.shape), model.output_shape
    ((None, 16, 16), (None, 6))
    >>> stem = vit(image_size=(32, 32), patch_size=8, hidden_dim=16, num_heads=2, num_layers=1, mlp_dim=32,
    ...            conv_stem=True)
    >>> [layer.name for layer in stem.layers if layer.name.startswith("stem_conv")]
    ['stem_conv1', 'stem_conv2']
    >>> spt = vit(image_size=(64, 64), patch_size=8, hidden_dim=16, num_heads=2, num_layers=1, mlp_dim=32,
    ...           downsample=2, shifted_patches=True)
    >>> spt.name, tuple(spt.get_layer("patch_embedding").output.shape)  # 32x32 after pooling: 4 x 4 tokens
    ('vit_p8_pool2_spt', (None, 16, 16))
    """
    layers = keras.layers
    if conv_stem and shifted_patches:
        raise ValueError("choose conv_stem or shifted_patches: both replace the patch embedding")
    inputs = keras.Input((*image_size, channels), name="image")
    x = inputs
    if downsample > 1:
        x = layers.AveragePooling2D(downsample, name="downsample")(x)
        image_size = (image_size[0] // downsample, image_size[1] // downsample)
    x = vit_augmentation(input_shape=(*image_size, channels))(x) if augment else x
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    if shifted_patches:
        x = ShiftedPatchEmbedding(patch_size, hidden_dim, name="patch_embedding")(x)
    elif conv_stem:
        strides = stem_strides(patch_size)
        for i, stride in enumerate(strides):
            filters = max(8, hidden_dim // 2 ** (len(strides) - 1 - i))
            x = layers.Conv2D(filters, 2 * stride - 1, strides=stride, padding="same",
                              use_bias=False, name=f"stem_conv{i + 1}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"stem_bn{i + 1}")(x)
            x = layers.ReLU(name=f"stem_relu{i + 1}")(x)
        x = PatchEmbedding(1, hidden_dim, name="patch_embedding")(x)
    else:
        x = PatchEmbedding(patch_size, hidden_dim, name="patch_embedding")(x)
    outputs = _encoder(x, hidden_dim, num_heads, num_layers, mlp_dim, dropout, num_classes)
    default = (f"vit_p{patch_size}" + (f"_pool{downsample}" if downsample > 1 else "")
               + ("_spt" if shifted_patches else "") + ("_convstem" if conv_stem else "") + ("_aug" if augment else ""))
    return keras.Model(inputs, outputs, name=name or default)


def _conv_residual_block(x, filters: int, name: str, momentum: float = 0.9):
    """Two 3x3 convolutions with batch norm, added to their input, then ReLU (same shape out)."""
    layers = keras.layers
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn2")(y)
    x = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_out")(x)


def hybrid(image_size: tuple[int, int] = (200, 200), num_classes: int = 6, channels: int = 1,
           stem_filters: tuple[int, ...] = (16, 32, 64), hidden_dim: int = 64, num_heads: int = 4,
           num_layers: int = 2, mlp_dim: int = 128, dropout: float = 0.1, augment: bool = True,
           translate: float = 0.0, name: str = "hybrid"):
    """A hybrid classifier: a residual CNN stem, then self-attention over its feature map.

    The stem starts with a 4x4 convolution of stride 4 (``stem_filters[0]``
    filters: cheap, and it already sees every pixel), then each further entry of
    ``stem_filters`` halves the resolution (3x3 convolution, stride 2) and adds a
    residual block (:func:`_conv_residual_block`): 200x200 becomes 50, 25 and 13
    (169 positions). Each position becomes a ``hidden_dim`` token, and
    ``num_layers`` transformer blocks relate every position to every other, as in
    :func:`vit`. Convolutions supply locality cheaply; attention adds the global view.
    Batch norm uses ``momentum=0.9`` (its averages keep up with short trainings).
    ``augment`` adds :func:`vit_augmentation` with shifts of ``translate`` (default:
    flips only; the convolutions already bring translation equivariance, and without
    ``RandomTranslation`` the model can be compiled with XLA on a GPU).

    Examples
    --------
    >>> model = hybrid(image_size=(32, 32), stem_filters=(8, 16), hidden_dim=16, num_heads=2, num_layers=1,
    ...                mlp_dim=32)
    >>> tuple(model.get_layer("patch_embedding").output.shape), model.output_shape
    ((None, 16, 16), (None, 6))
    """
    layers = keras.layers
    inputs = keras.Input((*image_size, channels), name="image")
    x = vit_augmentation(translate, input_shape=(*image_size, channels))(inputs) if augment else inputs
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    for i, filters in enumerate(stem_filters):
        kernel, stride = (4, 4) if i == 0 else (3, 2)
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                          name=f"stage{i + 1}_down")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"stage{i + 1}_bn")(x)
        x = layers.ReLU(name=f"stage{i + 1}_relu")(x)
        if i:
            x = _conv_residual_block(x, filters, name=f"stage{i + 1}_res")
    x = PatchEmbedding(1, hidden_dim, name="patch_embedding")(x)
    outputs = _encoder(x, hidden_dim, num_heads, num_layers, mlp_dim, dropout, num_classes)
    return keras.Model(inputs, outputs, name=name)


SMALL_VIT_CONFIG = {"image_shape": (64, 64, 3), "patch_size": 16, "num_layers": 2, "num_heads": 2,
                    "hidden_dim": 64, "mlp_dim": 128}
"""A tiny KerasHub ``ViTBackbone`` configuration: the random-weights stand-in of fast mode offline."""

VIT_B16_CONFIG = {"image_shape": (224, 224, 3), "patch_size": 16, "num_layers": 12, "num_heads": 12,
                  "hidden_dim": 768, "mlp_dim": 3072}
"""ViT-B/16's architecture (Dosovitskiy et al. 2021, Table 1), the preset's shape: with random weights it has
the preset's size and speed (for benchmarks without the download), not its accuracy."""


def vit_classifier(backbone, num_classes: int = 6, input_shape: tuple[int, int, int] = (200, 200, 1),
                   dropout: float = 0.1, name: str = "vit_pretrained"):
    """A classifier around a KerasHub ``ViTBackbone``: NEU pixels in, class probabilities out; backbone frozen.

    Grayscale is repeated to 3 channels (``to_rgb``), resized to the backbone's
    size and scaled to [-1, 1] (the presets' ``(x / 255 - 0.5) / 0.5``). The backbone
    is frozen and called in inference mode; its class token (``class_token``) feeds
    ``dropout`` and ``classifier`` (softmax).

    Examples
    --------
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
    """A KerasHub ViT pretrained on ImageNet, frozen, with a new softmax head.

    The real path is ``keras_hub.models.ViTBackbone.from_preset(preset)``: a
    KerasHub preset name (downloaded once from Kaggle) or a local preset directory
    (one written by ``backbone.save_to_preset(folder)``, or a downloaded preset
    copied to a machine without internet), which loads without any download. A
    preset name goes through :func:`pretrained` (the course's offline rule): when
    the download fails, fast mode builds a small random ``ViTBackbone`` from
    :data:`SMALL_VIT_CONFIG` instead (said loudly), and full mode raises. The model
    takes NEU pixels ``0..255`` at ``input_shape`` (see :func:`vit_classifier`).
    Returns ``(model, has_pretrained_weights)``.

    History: the course's seed notebook called ``keras_cv.models.ViT(...)``, which does
    not match KerasCV's API. KerasCV did ship ViT models (``ViTTiny16`` ... ``ViTH32``,
    built on a ``ViT`` class), later moved them to its legacy package and dropped them;
    KerasCV is now frozen, and Keras's pretrained vision models live in KerasHub.

    Examples
    --------
    >>> import keras_hub, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> keras_hub.models.ViTBackbone(**SMALL_VIT_CONFIG).save_to_preset(folder)  # a stand-in preset
    >>> model, real = pretrained_vit(input_shape=(48, 48, 1), preset=folder)
    >>> real, model.name, model.output_shape
    (True, 'vit_pretrained', (None, 6))
    """
    from pathlib import Path

    import keras_hub

    def build(weights):
        if weights is None:
            backbone = keras_hub.models.ViTBackbone(**SMALL_VIT_CONFIG, name="vit_backbone")
        else:
            backbone = keras_hub.models.ViTBackbone.from_preset(preset)
        return vit_classifier(backbone, num_classes, input_shape, dropout,
                              name="vit_pretrained" if weights else "vit_random_small")

    if Path(preset).is_dir():  # a local preset: the real path, nothing to download
        return build(str(preset)), True
    return pretrained(build, f"the KerasHub ViT preset {preset!r}")


def vit_backbone(model):
    """The KerasHub ``ViTBackbone`` inside a model built by :func:`pretrained_vit`."""
    import keras_hub

    found = [layer for layer in model.layers if isinstance(layer, keras_hub.models.ViTBackbone)]
    if len(found) != 1:
        raise ValueError(f"{model.name} has {len(found)} ViTBackbone layers, expected one")
    return found[0]


def unfreeze_vit_top(model, n_blocks: int) -> list[str]:
    """Fine-tuning: make the last ``n_blocks`` transformer blocks of the backbone and its final norm trainable.

    The patch embedding and the earlier blocks stay frozen. Returns the trainable
    weights' paths (the head included). Compile again before ``fit``.

    Examples
    --------
    >>> model, _ = pretrained_vit(input_shape=(48, 48, 1), preset=_doctest_preset())
    >>> sorted({"/".join(path.split("/")[:2]) for path in unfreeze_vit_top(model, 1)})
    ['classifier/bias', 'classifier/kernel', 'vit_encoder/ln', 'vit_encoder/transformer_block_2']
    """
    backbone = vit_backbone(model)
    encoder = backbone.get_layer("vit_encoder")
    if not 0 <= n_blocks <= len(encoder.encoder_layers):
        raise ValueError(f"n_blocks={n_blocks}: the backbone has {len(encoder.encoder_layers)} blocks")
    backbone.trainable = True  # sets every layer inside trainable; then freeze all but the top
    for layer in backbone.layers:
        layer.trainable = layer is encoder
    for block in encoder.encoder_layers[:len(encoder.encoder_layers) - n_blocks]:
        block.trainable = False
    return [w.path for w in model.trainable_weights]


def _doctest_preset() -> str:
    """A local stand-in preset (the small random configuration) for the doctests: no download."""
    import tempfile

    import keras_hub

    folder = tempfile.mkdtemp(prefix="vit-preset-")
    keras_hub.models.ViTBackbone(**SMALL_VIT_CONFIG, name="vit_backbone").save_to_preset(folder)
    return folder


def transformer_optimizer(total_steps: int, learning_rate: float = 1e-3, weight_decay: float = 0.05,
                          warmup_fraction: float = 0.1):
    """AdamW with a linear warm-up, then a cosine decay to zero: the optimizer for a transformer.

    Transformers from scratch train badly with a constant learning rate: the
    warm-up (``warmup_fraction`` of ``total_steps``, from ``learning_rate / 100``)
    lets the attention weights settle before full-size steps, then the rate decays
    to zero along a cosine. ``weight_decay`` regularises (0 makes it plain Adam).

    Examples
    --------
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
    """``"auto"`` (XLA) when a GPU is visible, ``False`` on a CPU.

    On a CPU, XLA took longer to compile (a minute for a small ViT) and used more CPU
    time per step than TensorFlow's own kernels (hybrid, batch 32: 0.56 s against
    0.44 s on 2 cores).

    Examples
    --------
    >>> jit_default() in ("auto", False)
    True
    """
    import tensorflow as tf

    return "auto" if tf.config.list_physical_devices("GPU") else False


def compile_transformer(model, total_steps: int, learning_rate: float = 1e-3, weight_decay: float = 0.05,
                        warmup_fraction: float = 0.1, jit_compile: bool | str | None = None):
    """Compile with :func:`transformer_optimizer`, sparse cross-entropy and accuracy (for benchmarks and tests).

    The lessons call ``model.compile`` on the page with the same arguments.
    ``jit_compile=None`` means :func:`jit_default`. Returns the model.

    Examples
    --------
    >>> model = compile_transformer(vit(image_size=(16, 16), patch_size=8, hidden_dim=8, num_heads=2,
    ...                                 num_layers=1, mlp_dim=8), total_steps=100)
    >>> type(model.optimizer).__name__
    'AdamW'
    """
    model.compile(optimizer=transformer_optimizer(total_steps, learning_rate, weight_decay, warmup_fraction),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"],
                  jit_compile=jit_default() if jit_compile is None else jit_compile)
    return model
