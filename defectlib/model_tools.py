"""Helpers around a Keras model that a student should not retype: what trains, stand-in weights, ResNet's preprocessing."""

from __future__ import annotations

# At module level so the layer is registered on import; a Lambda layer would fail safe mode.
import keras as _keras


def calibrate_batch_norm(model, images) -> None:
    """Set the BatchNormalization statistics of a random-weights base to those of ``images`` (stand-in weights only).

    Without it a random MobileNetV2's pooled features vanish and a head trained on them learns only its bias.

    >>> import numpy as np
    >>> from defectlib.transfer import feature_extractor, transfer_model
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
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
    """Trainable and non-trainable parameters of each top-level layer, and in total (a ``DataFrame``).

    >>> from defectlib.transfer import transfer_model
    >>> model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    >>> trainable_summary(model).loc[["base", "classifier"]].to_dict("index")
    {'base': {'trainable': 0, 'non_trainable': 2257984}, 'classifier': {'trainable': 7686, 'non_trainable': 0}}
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


@_keras.saving.register_keras_serializable(package="defectlib")
class CaffePreprocess(_keras.layers.Layer):
    """``keras.applications.resnet50.preprocess_input`` ("caffe": RGB to BGR, minus ImageNet means) as a layer.

    >>> import numpy as np
    >>> x = np.array([[[[255.0, 0.0, 10.0]]]], "float32")   # one RGB pixel
    >>> np.asarray(CaffePreprocess()(x)).round(2)            # B - 103.939, G - 116.779, R - 123.68
    array([[[[ -93.94, -116.78,  131.32]]]], dtype=float32)
    """

    def call(self, inputs):
        return _keras.applications.resnet50.preprocess_input(_keras.ops.cast(inputs, self.compute_dtype))
