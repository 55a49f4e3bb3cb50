"""Lesson 2: transfer learning with ImageNet networks from keras.applications.

The lesson writes these builders out on its page and checks that they build the same
models as the ones here, which the tests and ``benchmarks/transfer_cache.py`` use.
"""

from __future__ import annotations

from pathlib import Path

TRANSFER_BASES = {"mobilenet_v2": "MobileNetV2", "resnet50_v2": "ResNet50V2"}
"""The ImageNet networks :func:`transfer_model` can adapt (both expect pixels scaled to [-1, 1])."""


def transfer_model(name: str = "mobilenet_v2", num_classes: int = 6, image_size: tuple[int, int] = (224, 224),
                   input_shape: tuple[int, int, int] = (200, 200, 3), weights: str | Path | None = "imagenet",
                   dropout: float = 0.2):
    """An ImageNet network with a new classification head, its base frozen.

    The model takes RGB pixels ``0..255`` at ``input_shape`` (NEU images are
    200x200) and does its own preprocessing with serialisable layers: ``resize``
    to ``image_size``, then ``preprocess`` (``Rescaling(1/127.5, offset=-1)``, the
    [-1, 1] scaling both networks were trained with). The base is the layer named
    ``"base"``, frozen (``trainable=False``) and called with ``training=False``;
    the head is ``pool`` (global average), ``dropout`` and ``classifier`` (softmax).
    ``weights`` is ``"imagenet"`` (downloaded once), ``None`` (random), or the path
    of a ``.weights.h5`` file saved from the same network built with
    ``include_top=False`` (any input size: the convolution weights do not depend on it).
    The base's own input layer is named ``"base_input"``, so that two builds with the
    same arguments have equal ``get_config()``.

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
    weights = str(weights) if isinstance(weights, Path) else weights
    base = network(include_top=False, weights=weights, input_tensor=keras.Input((*image_size, 3), name="base_input"),
                   name="base")
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


def feature_extractor(model):
    """The frozen part of a :func:`transfer_model`: image in, the pooled features of its base out.

    It shares its layers (and weights) with ``model``: ``resize``, ``preprocess``,
    the frozen ``base`` in inference mode, and ``pool``, which has no weights. While
    the base is frozen and nothing random comes before the head, these features are
    the same in every epoch, so they can be computed once (see :func:`head_model`).

    Examples
    --------
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> feature_extractor(model).output_shape
    (None, 1280)
    """
    import keras

    return keras.Model(model.input, model.get_layer("pool").output, name="features")


def head_model(model):
    """The trainable head of a :func:`transfer_model` on its own: pooled features in, probabilities out.

    It reuses the model's ``dropout`` and ``classifier`` layers: training it on
    features from :func:`feature_extractor` trains the head of ``model`` itself, with
    the same steps as training ``model`` end to end on the images (same batches, same
    initial weights) would take.

    Examples
    --------
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> head = head_model(model)
    >>> [layer.name for layer in head.layers], head.get_layer("classifier") is model.get_layer("classifier")
    (['features', 'dropout', 'classifier'], True)
    """
    import keras

    features = keras.Input(model.get_layer("pool").output.shape[1:], name="features")
    x = model.get_layer("dropout")(features)
    return keras.Model(features, model.get_layer("classifier")(x), name="head")


def calibrate_batch_norm(model, images) -> None:
    """Give a base with random weights the BatchNormalization statistics of ``images`` (for stand-in weights).

    With random weights and the initial statistics (mean 0, variance 1) the
    activations of MobileNetV2 shrink block after block, and its pooled features
    are about 1e-13: a head trained on them learns nothing but its bias. This sets
    every BatchNormalization layer of the base to the mean and variance of its input
    on ``images`` (one batch, 0-255 pixels), as training would, so the features have
    a sensible scale. It changes only those statistics; the base stays frozen. For
    benchmarks and tests that stand in for pretrained weights, where only the time
    or the code path matters; never needed with real weights.

    Examples
    --------
    >>> import numpy as np
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    >>> float(np.abs(feature_extractor(model)(images)).mean()) < 1e-6
    True
    >>> calibrate_batch_norm(model, images)
    >>> float(np.abs(feature_extractor(model)(images)).mean()) > 0.1, model.get_layer("base").trainable
    (True, False)
    """
    import keras

    base = model.get_layer("base")
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    x = model.get_layer("preprocess")(model.get_layer("resize")(images))
    momenta = [layer.momentum for layer in norms]
    flags = [(layer, layer.trainable) for layer in [base, *base.layers]]
    try:
        base.trainable = True  # a BatchNormalization layer updates its statistics only when trainable
        for layer in norms:
            layer.momentum = 0.0  # moving statistics := the statistics of this batch
        base(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        for layer, trainable in flags:
            layer.trainable = trainable


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
