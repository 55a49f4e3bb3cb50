"""Keras preprocessing layers of the lessons' models, registered so that saved models load with ``safe_mode=True``."""

from __future__ import annotations

# Registered with Keras when this module is imported, so `.keras` files that use it load in safe
# mode (no Lambda layer: a Lambda stores Python bytecode, which safe mode refuses).
import keras as _keras


@_keras.saving.register_keras_serializable(package="defectlib")
class CaffePreprocess(_keras.layers.Layer):
    """ResNet50's own preprocessing as a layer: RGB to BGR, then minus the ImageNet channel means.

    It is ``keras.applications.resnet50.preprocess_input`` ("caffe" mode: no
    scaling, pixels stay 0..255 minus about 104, 117, 124), wrapped in a
    registered layer so that a saved model loads with ``safe_mode=True``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[255.0, 0.0, 10.0]]]], "float32")   # one RGB pixel
    >>> np.asarray(CaffePreprocess()(x)).round(2)            # B - 103.939, G - 116.779, R - 123.68
    array([[[[ -93.94, -116.78,  131.32]]]], dtype=float32)
    """

    def call(self, inputs):
        return _keras.applications.resnet50.preprocess_input(_keras.ops.cast(inputs, self.compute_dtype))
