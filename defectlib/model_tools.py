"""Helpers around a Keras model that a student should not retype: what trains, and stand-in weights."""

from __future__ import annotations


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
    >>> from defectlib.transfer import feature_extractor, transfer_model
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
    >>> from defectlib.transfer import transfer_model
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
