"""Lesson 5's interpretation: class activation maps, Grad-CAM and temperature scaling.

Generated from notebooks/05_inspection.ipynb by `make lib` (tools/make_lib.py): do not edit.
Change the cells marked #@save in the notebook, then run `make lib`.
"""

import keras
import numpy as np
import tensorflow as tf


def class_activation_maps(model, images, classes=None, feature_layer=None, head=None):
    if feature_layer is None:                    # the layer before GlobalAveragePooling2D
        gap = next((i for i, layer in enumerate(model.layers)
                    if isinstance(layer, keras.layers.GlobalAveragePooling2D)), 0)
        if gap == 0:
            raise ValueError(f"{model.name} has no GlobalAveragePooling2D layer after its features: use grad_cam")
        feature_layer = model.layers[gap - 1].name
    head_layer = model.get_layer(head) if head else model.layers[-1]
    both = keras.Model(model.inputs[0], [model.get_layer(feature_layer).output, model.outputs[0]])
    features, probabilities = (np.asarray(t) for t in both(np.asarray(images, "float32"), training=False))
    classes = probabilities.argmax(axis=1) if classes is None else np.asarray(classes)
    kernel = np.asarray(head_layer.kernel)       # (channels, classes)
    return np.einsum("nhwk,kn->nhw", features, kernel[:, classes])


def grad_cam(model, images, classes=None, feature_layer=None):
    if feature_layer is None:                    # the last layer with a feature map
        feature_layer = [layer.name for layer in model.layers if len(layer.output.shape) == 4][-1]
    head = model.layers[-1]                      # a Dense layer: its logits are computed below, without softmax
    both = keras.Model(model.inputs[0], [model.get_layer(feature_layer).output, head.input])
    x = tf.convert_to_tensor(np.asarray(images, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)                            # else features with no weights before them are not recorded
        features, head_input = both(x, training=False)
        logits = tf.matmul(head_input, head.kernel) + (head.bias if head.use_bias else 0.0)
        picked = logits.numpy().argmax(axis=1) if classes is None else np.asarray(classes)
        score = tf.gather(logits, picked, axis=1, batch_dims=1)
    weights = tf.reduce_mean(tape.gradient(score, features), axis=(1, 2))   # one weight per channel
    return np.maximum(np.einsum("nhwk,nk->nhw", np.asarray(features), np.asarray(weights)), 0)


def softmax_with_temperature(probabilities, temperature):
    logits = np.log(np.clip(np.asarray(probabilities, "float64"), 1e-12, 1)) / temperature
    scaled = np.exp(logits - logits.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probabilities, labels):
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)

    def log_loss(log_t):
        p = softmax_with_temperature(probabilities, np.exp(log_t))
        return -float(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1)).mean())

    return float(np.exp(minimize_scalar(log_loss, bounds=(np.log(0.05), np.log(20)), method="bounded").x))
