"""Lesson 4's networks: the ResNet50 defect gate, the ResUNet and the small gate.

Generated from notebooks/04_severstal_pipeline.ipynb by `make lib` (tools/make_lib.py): do not edit.
Change the cells marked #@save in the notebook, then run `make lib`.
"""

import keras
from keras import layers
from defectlib.model_tools import CaffePreprocess


def defect_classifier(input_shape, weights="imagenet", dropout=0.3, hidden=64):
    inputs = keras.Input(input_shape, name="image")
    x = CaffePreprocess(name="preprocess")(inputs)              # RGB 0..255 -> BGR minus the ImageNet means
    base = keras.applications.ResNet50(include_top=False, weights=weights, name="base",
                                       input_tensor=keras.Input(input_shape, name="base_input"))
    base.trainable = False                                      # freezes the base and every layer in it
    x = base(x, training=False)                                 # batch norm keeps the ImageNet statistics
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="defect")(x)
    return keras.Model(inputs, outputs, name="defect_classifier")


def resunet_block(x, filters, name, momentum=0.9, synchronized=False):
    # Two 3x3 convolutions with batch norm, plus a 1x1 convolution shortcut: added, then ReLU.
    def norm(suffix):  # synchronized: one batch's statistics across GPUs (see 'Beyond one GPU')
        return layers.BatchNormalization(momentum=momentum, synchronized=synchronized, name=f"{name}_{suffix}")

    shortcut = norm("shortcut_bn")(layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut")(x))
    y = norm("bn1")(layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x))
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = norm("bn2")(layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y))
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resunet(input_shape, num_classes=4, base_filters=16, output_bias=-3.0, bn_momentum=0.9,
            synchronized=False):
    if input_shape[0] % 16 or input_shape[1] % 16:
        raise ValueError(f"resunet: height and width must be multiples of 16 (four 2x poolings), got {input_shape}")
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = resunet_block(x, base_filters, "stem", bn_momentum, synchronized)
    skips = []
    for stage in range(1, 5):                     # encoder: half the size, twice the filters
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{stage}_pool")(x)
        x = resunet_block(x, base_filters * 2**stage, f"down{stage}", bn_momentum, synchronized)
    for stage in range(4, 0, -1):                 # decoder: twice the size, joined with the encoder's features
        x = layers.UpSampling2D(2, name=f"up{stage}_upsample")(x)
        x = layers.Concatenate(name=f"up{stage}_skip")([x, skips[stage - 1]])
        x = resunet_block(x, base_filters * 2 ** (stage - 1), f"up{stage}", bn_momentum, synchronized)
    outputs = layers.Conv2D(num_classes, 1, activation="sigmoid", name="masks",
                            bias_initializer=keras.initializers.Constant(output_bias))(x)
    return keras.Model(inputs, outputs, name="resunet")


def small_gate(input_shape, filters=(8, 16, 32, 64), dropout=0.2, bn_momentum=0.9):
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for i, n in enumerate(filters, start=1):      # each block halves height and width
        x = layers.Conv2D(n, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
    x = layers.GlobalMaxPooling2D(name="pool")(x)   # the strongest response anywhere in the image
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="defect")(x)
    return keras.Model(inputs, outputs, name="small_gate")
