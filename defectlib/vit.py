"""Lesson 3's vision transformers: patch and position embeddings, blocks, the ViTs, the hybrid, training above a cut.

Generated from notebooks/03_vision_transformer.ipynb by `make lib` (tools/make_lib.py): do not edit.
Change the cells marked #@save in the notebook, then run `make lib`.
"""

import keras
from defectlib.transfer import extract
from defectlib.vit_tools import stem_strides, vit_augmentation, vit_backbone


@keras.saving.register_keras_serializable(package="lesson3")
class PatchEmbedding(keras.layers.Layer):
    """Cut images into patch_size squares and project each one to a hidden_dim token."""

    def __init__(self, patch_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size, self.hidden_dim = patch_size, hidden_dim
        self.projection = keras.layers.Conv2D(hidden_dim, patch_size, strides=patch_size, name="projection")

    def build(self, input_shape):
        if input_shape[1] % self.patch_size or input_shape[2] % self.patch_size:
            raise ValueError(f"{input_shape[1]}x{input_shape[2]} images do not split into {self.patch_size}-pixel "
                             "patches: choose a patch size that divides both sides")
        self.grid = (input_shape[1] // self.patch_size, input_shape[2] // self.patch_size)
        self.projection.build(input_shape)

    def call(self, images):
        features = self.projection(images)  # (batch, H/p, W/p, hidden_dim): one vector per patch
        return keras.ops.reshape(features, (-1, self.grid[0] * self.grid[1], self.hidden_dim))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim}


@keras.saving.register_keras_serializable(package="lesson3")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned vector to each token position (the weight `embedding`, one row per token)."""

    def __init__(self, stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev

    def build(self, input_shape):
        self.embedding = self.add_weight(name="embedding", shape=(input_shape[1], input_shape[2]),
                                         initializer=keras.initializers.TruncatedNormal(stddev=self.stddev))

    def call(self, tokens):
        return tokens + self.embedding

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="lesson3")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm transformer encoder block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, hidden_dim, num_heads, mlp_dim, dropout=0.0, attention_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim, self.num_heads, self.mlp_dim = hidden_dim, num_heads, mlp_dim
        self.dropout, self.attention_dropout = dropout, attention_dropout
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.attention = keras.layers.MultiHeadAttention(num_heads, key_dim=hidden_dim // num_heads,
                                                         dropout=attention_dropout, name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu", name="mlp_in")
        self.mlp_out = keras.layers.Dense(hidden_dim, name="mlp_out")
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.attention.build(input_shape, input_shape)  # query and value: the same tokens
        self.norm2.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_dim))

    def call(self, tokens, training=None):
        x = self.norm1(tokens)
        x = self.attention(x, x, training=training)  # every token attends to every token
        tokens = tokens + self.drop(x, training=training)
        x = self.mlp_out(self.drop(self.mlp_in(self.norm2(tokens)), training=training))
        return tokens + self.drop(x, training=training)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout, "attention_dropout": self.attention_dropout}


def encoder_and_head(tokens, hidden_dim, num_heads, num_layers, mlp_dim, dropout=0.1, num_classes=6):
    """Position embeddings, transformer blocks, final norm, average pooling and the softmax head."""
    layers = keras.layers
    x = PositionEmbedding(name="position_embedding")(tokens)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(num_layers):
        x = TransformerBlock(hidden_dim, num_heads, mlp_dim, dropout=dropout, name=f"block{i + 1}")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="classifier")(x)


def build_vit(image_size=(200, 200), patch_size=20, hidden_dim=64, num_heads=4, num_layers=4, mlp_dim=128,
              num_classes=6, conv_stem=False, augment=False, dropout=0.1, name="vit"):
    layers = keras.layers
    inputs = keras.Input((*image_size, 1), name="image")
    x = vit_augmentation(input_shape=(*image_size, 1))(inputs) if augment else inputs  # flips, shifts; training only
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    if conv_stem:  # convolutions with strides multiplying to patch_size (20: 4, then 5), overlapping windows
        strides = stem_strides(patch_size)
        for i, stride in enumerate(strides):
            filters = max(8, hidden_dim // 2 ** (len(strides) - 1 - i))
            x = layers.Conv2D(filters, 2 * stride - 1, strides=stride, padding="same", use_bias=False,
                              name=f"stem_conv{i + 1}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"stem_bn{i + 1}")(x)
            x = layers.ReLU(name=f"stem_relu{i + 1}")(x)
        x = PatchEmbedding(1, hidden_dim, name="patch_embedding")(x)  # one token per stem position
    else:
        x = PatchEmbedding(patch_size, hidden_dim, name="patch_embedding")(x)
    outputs = encoder_and_head(x, hidden_dim, num_heads, num_layers, mlp_dim, dropout, num_classes)
    return keras.Model(inputs, outputs, name=name)


def diagonal_shifts(images, shift):
    """The images and four copies moved `shift` pixels diagonally, stacked as channels: C -> 5 C."""
    height, width = images.shape[1], images.shape[2]
    padded = keras.ops.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]])  # zeros around the image
    # The crop of `padded` that starts at (shift - dy, shift - dx) is the image moved by (dy, dx).
    moved = [padded[:, shift - dy:shift - dy + height, shift - dx:shift - dx + width]
             for dy, dx in ((shift, shift), (shift, -shift), (-shift, shift), (-shift, -shift))]
    return keras.ops.concatenate([images, *moved], axis=-1)


@keras.saving.register_keras_serializable(package="lesson3")
class ShiftedPatchEmbedding(keras.layers.Layer):
    """Shifted Patch Tokenization: patches of the image and its 4 diagonal shifts -> norm -> Dense."""

    def __init__(self, patch_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size, self.hidden_dim = patch_size, hidden_dim
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")
        self.projection = keras.layers.Dense(hidden_dim, name="projection")

    def build(self, input_shape):
        self.grid = (input_shape[1] // self.patch_size, input_shape[2] // self.patch_size)
        self.patch_values = self.patch_size ** 2 * 5 * input_shape[-1]  # pixels x 5 views x channels
        self.norm.build((None, None, self.patch_values))
        self.projection.build((None, None, self.patch_values))

    def call(self, images):
        p, (rows, cols) = self.patch_size, self.grid
        x = diagonal_shifts(images, p // 2)
        x = keras.ops.reshape(x, (-1, rows, p, cols, p, x.shape[-1]))  # split both axes into (patch, pixel)
        x = keras.ops.transpose(x, (0, 1, 3, 2, 4, 5))                  # (image, patch row, patch col, y, x, c)
        x = keras.ops.reshape(x, (-1, rows * cols, self.patch_values))   # one flattened stack per patch
        return self.projection(self.norm(x))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim}


def build_vit_spt(image_size=(200, 200), downsample=2, patch_size=10, hidden_dim=64, num_heads=4, num_layers=4,
                  mlp_dim=128, num_classes=6, dropout=0.1, shifted=True, name="vit_spt"):
    layers = keras.layers
    inputs = keras.Input((*image_size, 1), name="image")
    x = layers.AveragePooling2D(downsample, name="downsample")(inputs)  # 200x200 -> 100x100
    small_size = (image_size[0] // downsample, image_size[1] // downsample)
    x = vit_augmentation(input_shape=(*small_size, 1))(x)               # flips, shifts; training only
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    embedding = ShiftedPatchEmbedding if shifted else PatchEmbedding    # shifted=False: plain patches
    x = embedding(patch_size, hidden_dim, name="patch_embedding")(x)
    outputs = encoder_and_head(x, hidden_dim, num_heads, num_layers, mlp_dim, dropout, num_classes)
    return keras.Model(inputs, outputs, name=name)


def residual_block(x, filters, name):
    layers = keras.layers
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn2")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def hybrid(image_size=(200, 200), num_layers=2, stem_filters=(16, 32, 64), hidden_dim=64, num_heads=4, mlp_dim=128):
    layers = keras.layers
    inputs = keras.Input((*image_size, 1), name="image")
    x = vit_augmentation(translate=0, input_shape=(*image_size, 1))(inputs)  # flips only
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    for i, filters in enumerate(stem_filters):
        kernel, stride = (4, 4) if i == 0 else (3, 2)
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                          name=f"stage{i + 1}_down")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"stage{i + 1}_bn")(x)
        x = layers.ReLU(name=f"stage{i + 1}_relu")(x)
        if i:
            x = residual_block(x, filters, name=f"stage{i + 1}_res")
    x = PatchEmbedding(1, hidden_dim, name="patch_embedding")(x)
    outputs = encoder_and_head(x, hidden_dim, num_heads=num_heads, num_layers=num_layers, mlp_dim=mlp_dim)
    return keras.Model(inputs, outputs, name="hybrid")


def fit_features(above, learning_rate, features, epochs, batch_size=32, jit_compile="auto"):
    # Train above on features computed once: features = ((x_train, y_train), (x_val, y_val)).
    (x_train, y_train), validation = features
    above.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    above.fit(x_train, y_train, validation_data=validation, epochs=epochs, batch_size=batch_size, verbose=2)


def fit_cached(below, above, learning_rate, datasets, epochs, batch_size=32, jit_compile="auto"):
    # Lesson 2's caches: what is frozen (below) runs once per image; above trains on its output.
    fit_features(above, learning_rate, [extract(below, d) for d in datasets], epochs, batch_size, jit_compile)


def split_vit(model, n_blocks=1):
    # Like split_at, for a KerasHub ViT: below (image -> tokens entering the last n_blocks), above (-> classes).
    backbone = vit_backbone(model)
    encoder = backbone.get_layer("vit_encoder")
    if encoder.dropout_rate or encoder.attention_dropout:  # fit would run them below the cut, the cache cannot
        raise ValueError("the backbone has dropout below the cut: activations computed once would not be exact")
    images = keras.Input(model.input.shape[1:], name="image")
    x = images
    for name in ("to_rgb", "resize", "preprocess"):  # the classifier's input layers, as in the model
        if any(layer.name == name for layer in model.layers):
            x = model.get_layer(name)([x, x, x] if name == "to_rgb" else x)
    x = backbone.get_layer("vit_patching_and_embedding")(x)
    for block in encoder.encoder_layers[:-n_blocks]:
        x = block(x)
    tokens = keras.Input(x.shape[1:], name="tokens")
    y = tokens
    for block in encoder.encoder_layers[-n_blocks:]:
        y = block(y)
    top = keras.Model(tokens, model.get_layer("class_token")(encoder.layer_norm(y)), name="top")  # -> class token
    tokens = keras.Input(x.shape[1:], name="tokens")
    y = model.get_layer("classifier")(model.get_layer("dropout")(top(tokens)))
    return keras.Model(images, x, name="below"), keras.Model(tokens, y, name="above")


def unfreeze_vit_top(model, n_blocks):
    """Make the last n_blocks transformer blocks of a pretrained ViT trainable, and its final norm; the paths."""
    backbone = vit_backbone(model)
    encoder = backbone.get_layer("vit_encoder")
    blocks = encoder.encoder_layers
    if not 0 <= n_blocks <= len(blocks):
        raise ValueError(f"n_blocks={n_blocks}: the backbone has {len(blocks)} blocks")
    backbone.trainable = True                   # every layer inside becomes trainable...
    for layer in backbone.layers:
        layer.trainable = layer is encoder      # ...the patch embedding is frozen again...
    for block in blocks[:len(blocks) - n_blocks]:
        block.trainable = False                 # ...and all blocks but the last n_blocks
    return [w.path for w in model.trainable_weights]
