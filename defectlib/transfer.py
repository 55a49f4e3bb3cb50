"""Lesson 2's transfer learning: an ImageNet base with a new head, cached features, fine-tuning.

Generated from notebooks/02_transfer_learning.ipynb by `make lib` (tools/make_lib.py): do not edit.
Change the cells marked #@save in the notebook, then run `make lib`.
"""

import keras
import numpy as np
from keras import layers


NETWORKS = {"mobilenet_v2": keras.applications.MobileNetV2, "resnet50_v2": keras.applications.ResNet50V2}


def transfer_model(name="mobilenet_v2", num_classes=6, image_size=(224, 224), input_shape=(200, 200, 3),
                   weights="imagenet", dropout=0.2):
    if name not in NETWORKS:
        raise ValueError(f"unknown base {name!r}: expected one of {', '.join(NETWORKS)}")
    inputs = keras.Input(input_shape, name="image")  # raw RGB pixels, 0-255
    x = layers.Resizing(*image_size, interpolation="bilinear", antialias=True, name="resize")(inputs)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)  # [-1, 1], as the network was trained
    base = NETWORKS[name](include_top=False, weights=weights, name="base",
                          input_tensor=keras.Input((*image_size, 3), name="base_input"))
    base.trainable = False             # freezes the base and every layer inside it
    x = base(x, training=False)        # fit overrides this flag; frozen BN stays in inference mode (phase 2)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"{name}_neu")


def feature_extractor(model, cut="pool"):
    # Everything below the head: resize, preprocess, the frozen base, and pooling (which has no weights).
    return keras.Model(model.input, model.get_layer(cut).output, name="features")


def head_model(model, cut="pool"):
    # The head on its own; it reuses the model's dropout and classifier layers, and so their weights.
    features = keras.Input(model.get_layer(cut).output.shape[1:], name="features")
    return keras.Model(features, model.get_layer("classifier")(model.get_layer("dropout")(features)), name="head")


def extract(extractor, dataset):
    # One pass: each batch's features next to that batch's labels (see the callout on shuffled sets).
    features, labels = [], []
    progress = keras.utils.Progbar(max(int(dataset.cardinality()), 0) or None, unit_name="batch")
    for images, y in dataset:
        features.append(extractor.predict_on_batch(images))
        labels.append(y.numpy())
        progress.add(1)
    return np.concatenate(features), np.concatenate(labels)


def unfreeze_top(model, n_layers, base_name="base"):
    # Make the top n_layers of the base trainable, except BatchNormalization; freeze all the others.
    base = model.get_layer(base_name)
    if not 0 <= n_layers <= len(base.layers):
        raise ValueError(f"n_layers={n_layers}: the base has {len(base.layers)} layers")
    base.trainable = True  # a frozen nested model hides all its weights from the optimiser
    first = len(base.layers) - n_layers
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= first and not isinstance(layer, layers.BatchNormalization)
    return [layer.name for layer in base.layers if layer.trainable]


def split_at(model, cut, base_name="base"):
    # Two models sharing model's layers and weights: below (image -> activations at the cut), above (-> classes).
    base = model.get_layer(base_name)
    cut_output = base.get_layer(cut).output
    images = keras.Input(model.input.shape[1:], name="image")
    x = model.get_layer("preprocess")(model.get_layer("resize")(images))
    below = keras.Model(images, keras.Model(base.input, cut_output)(x, training=False), name="below")
    top = keras.Model(cut_output, base.output, name="top")  # Keras gives it a new input in place of the cut
    activations = keras.Input(cut_output.shape[1:], name="activations")
    x = model.get_layer("dropout")(model.get_layer("pool")(top(activations)))
    return below, keras.Model(activations, model.get_layer("classifier")(x), name="above")
