"""Lesson 2: transfer learning with ImageNet networks from keras.applications."""

from __future__ import annotations

TRANSFER_BASES = {"mobilenet_v2": "MobileNetV2", "resnet50_v2": "ResNet50V2"}
"""The ImageNet networks :func:`transfer_model` can adapt (both expect pixels scaled to [-1, 1])."""


def transfer_model(name: str = "mobilenet_v2", num_classes: int = 6, image_size: tuple[int, int] = (224, 224),
                   input_shape: tuple[int, int, int] = (200, 200, 3), weights: str | None = "imagenet",
                   dropout: float = 0.2):
    """An ImageNet network with a new classification head, its base frozen.

    The model takes RGB pixels ``0..255`` at ``input_shape`` (NEU images are
    200x200) and does its own preprocessing with serialisable layers: ``resize``
    to ``image_size``, then ``preprocess`` (``Rescaling(1/127.5, offset=-1)``, the
    [-1, 1] scaling both networks were trained with). The base is the layer named
    ``"base"``, frozen (``trainable=False``) and called with ``training=False``;
    the head is ``pool`` (global average), ``dropout`` and ``classifier`` (softmax).
    ``weights`` is ``"imagenet"`` (downloaded once) or ``None`` (random).

    Examples
    --------
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(40, 40, 3), weights=None)
    >>> [layer.name for layer in model.layers]
    ['image', 'resize', 'preprocess', 'base', 'pool', 'dropout', 'classifier']
    >>> model.get_layer("base").trainable, model.output_shape
    (False, (None, 6))
    """
    import keras
    from keras import layers

    if name not in TRANSFER_BASES:
        raise ValueError(f"unknown base {name!r}: expected one of {', '.join(TRANSFER_BASES)}")
    inputs = keras.Input(input_shape, name="image")
    # antialias: averaging when shrinking 200 -> 96 (fast mode) instead of skipping pixels.
    x = layers.Resizing(*image_size, interpolation="bilinear", antialias=True, name="resize")(inputs)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    network = getattr(keras.applications, TRANSFER_BASES[name])
    base = network(include_top=False, weights=weights, input_shape=(*image_size, 3), name="base")
    base.trainable = False  # the setter freezes every layer inside the base too
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"{name}_neu")


def unfreeze_top(model, n_layers: int, base_name: str = "base") -> list[str]:
    """Make the top ``n_layers`` layers of the base trainable, except BatchNormalization.

    Everything else in the base is frozen. BatchNormalization layers stay frozen
    because a frozen BatchNormalization layer runs in inference mode in Keras 3
    (it keeps using its ImageNet statistics); a trainable one would normalise with
    the statistics of each small NEU batch during ``fit``, even though the base was
    called with ``training=False`` (``fit`` calls the model with ``training=True``,
    which overrides it). Returns the names of the layers made trainable
    (layers without weights, such as activations, included). Compile the model
    again afterwards: ``fit`` only picks up the change after ``compile``.

    Examples
    --------
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> unfreeze_top(model, 3)
    ['Conv_1', 'out_relu']
    >>> [layer.name for layer in model.get_layer("base").layers if layer.trainable]
    ['Conv_1', 'out_relu']
    """
    import keras

    base = model.get_layer(base_name)
    if not 0 <= n_layers <= len(base.layers):
        raise ValueError(f"n_layers={n_layers}: the base has {len(base.layers)} layers")
    base.trainable = True  # the nested model itself must be trainable for any of its layers to train
    unfrozen = []
    for i, layer in enumerate(base.layers):
        top = i >= len(base.layers) - n_layers
        layer.trainable = top and not isinstance(layer, keras.layers.BatchNormalization)
        if layer.trainable:
            unfrozen.append(layer.name)
    return unfrozen


def trainable_summary(model):
    """Trainable and frozen parameters of each top-level layer, and in total (a ``DataFrame``).

    Counts the weights ``fit`` will update (``trainable``) and the rest
    (``non_trainable``: frozen weights and BatchNormalization statistics).

    Examples
    --------
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> table = trainable_summary(model)
    >>> table.loc["base"].to_dict(), table.loc["classifier"].to_dict()
    ({'trainable': 0, 'non_trainable': 2257984}, {'trainable': 7686, 'non_trainable': 0})
    >>> table.loc["total"].to_dict()
    {'trainable': 7686, 'non_trainable': 2257984}
    """
    import numpy as np
    import pandas as pd

    def count(weights) -> int:
        return int(sum(np.prod(w.shape) for w in weights))

    rows = {layer.name: {"trainable": count(layer.trainable_weights),
                         "non_trainable": count(layer.non_trainable_weights)} for layer in model.layers}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer")
    table.loc["total"] = [count(model.trainable_weights), count(model.non_trainable_weights)]
    return table.astype(int)
