"""Lesson 1: the seed's LeNet and the refined CNN.

The notebook defines these two models in its own cells, for the students to read and change, and
checks with an assert that its definitions build exactly the same layers as the builders below
(used by tests/test_models_cnn.py and benchmarks/neu_cnn.py). Change both together.
"""

from __future__ import annotations


def lenet(input_shape: tuple[int, int, int] = (200, 200, 3), image_size: tuple[int, int] = (255, 255),
          num_classes: int = 6, filters: tuple[int, ...] = (32, 64, 128), dense_units: int = 128,
          dropout: float = 0.5, augment: bool = True, name: str = "lenet"):
    """The seed recipe: a LeNet-style CNN, images resized to 255x255 RGB inside the model.

    Resizing, rescaling to 0-1 and augmentation (horizontal flips, small rotations and
    zooms, active only in training) are layers of the model, so it takes raw 0-255 pixels.
    Then one ``Conv2D(3x3, ReLU)`` + ``MaxPooling2D(2)`` block per entry of ``filters``,
    ``Flatten``, a ``Dense`` hidden layer, ``Dropout`` and a softmax over ``num_classes``.
    Uncompiled.

    Examples
    --------
    >>> model = lenet(input_shape=(40, 40, 3), image_size=(32, 32), filters=(4, 8), dense_units=16)
    >>> model.output_shape, model.count_params()
    ((None, 6), 5134)
    """
    import keras
    from keras import layers

    stack = [keras.Input(input_shape, name="image"), layers.Resizing(*image_size, name="resize"),
             layers.Rescaling(1 / 255, name="rescale")]
    if augment:
        stack += [layers.RandomFlip("horizontal", name="flip"), layers.RandomRotation(0.05, name="rotate"),
                  layers.RandomZoom(0.1, name="zoom")]
    for i, width in enumerate(filters, start=1):
        stack += [layers.Conv2D(width, 3, activation="relu", name=f"conv{i}"),
                  layers.MaxPooling2D(2, name=f"pool{i}")]
    stack += [layers.Flatten(name="flatten"), layers.Dense(dense_units, activation="relu", name="dense"),
              layers.Dropout(dropout, name="dropout"),
              layers.Dense(num_classes, activation="softmax", name="probabilities")]
    return keras.Sequential(stack, name=name)


def refined_cnn(input_shape: tuple[int, int, int] = (200, 200, 1), num_classes: int = 6,
                widths: tuple[int, ...] = (16, 32, 64, 128), stem_kernel: int = 4, stem_stride: int = 4,
                bn_momentum: float = 0.9, dropout: float = 0.2, augment: bool = True, name: str = "refined_cnn"):
    """The refined CNN of lesson 1: native-size grayscale input, batch normalisation, global average pooling.

    Rescaling and augmentation (flips both ways, training only) are inside the model.
    A stem ``Conv2D(widths[0], stem_kernel, strides=stem_stride)`` shrinks the image at
    once; each further width adds ``MaxPooling2D(2)`` (except before the first) and a
    3x3 ``Conv2D``; every convolution is followed by ``BatchNormalization(momentum=bn_momentum)``
    and ReLU. ``GlobalAveragePooling2D``, ``Dropout`` and a softmax close it. Uncompiled.

    Examples
    --------
    >>> model = refined_cnn(input_shape=(32, 32, 1), widths=(4, 8))
    >>> model.output_shape, model.get_layer("block1_bn").momentum
    ((None, 6), 0.9)
    """
    import keras
    from keras import layers

    def conv_bn_relu(width: int, kernel: int, strides: int, prefix: str) -> list:
        return [layers.Conv2D(width, kernel, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv"),
                layers.BatchNormalization(momentum=bn_momentum, name=f"{prefix}_bn"),
                layers.ReLU(name=f"{prefix}_relu")]

    stack = [keras.Input(input_shape, name="image"), layers.Rescaling(1 / 255, name="rescale")]
    if augment:
        stack.append(layers.RandomFlip("horizontal_and_vertical", name="flip"))
    stack += conv_bn_relu(widths[0], stem_kernel, stem_stride, "stem")
    for i, width in enumerate(widths[1:], start=1):
        if i > 1:
            stack.append(layers.MaxPooling2D(2, name=f"block{i}_pool"))
        stack += conv_bn_relu(width, 3, 1, f"block{i}")
    stack += [layers.GlobalAveragePooling2D(name="gap"), layers.Dropout(dropout, name="dropout"),
              layers.Dense(num_classes, activation="softmax", name="probabilities")]
    return keras.Sequential(stack, name=name)

