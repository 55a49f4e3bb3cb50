"""Lesson 1: the seed's LeNet, the refined CNN, and the steps of the ablation between them.

The notebook defines ``lenet`` and ``refined_cnn`` in its own cells, for the students to read
and change, and checks with an assert that its definitions build exactly the same layers as
the builders below (used by tests/test_models_cnn.py and benchmarks/neu_cnn.py). Change both
together. ``ablation_cnn`` goes from one to the other one change at a time.
"""

from __future__ import annotations

#: The ablation of lesson 1: each row adds one change to the row before it (keyword arguments of
#: :func:`ablation_cnn`; the last row changes only the learning-rate schedule, not the model).
ABLATION_STEPS: tuple[tuple[str, dict], ...] = (
    ("seed LeNet", {}),
    ("+ native 200x200 grayscale", {"native": True}),
    ("+ strided stem", {"native": True, "stem": True}),
    ("+ batch norm", {"native": True, "stem": True, "batch_norm": True}),
    ("+ global average pooling", {"native": True, "stem": True, "batch_norm": True, "gap": True}),
    ("+ flips only", {"native": True, "stem": True, "batch_norm": True, "gap": True, "flips": True}),
    ("+ cosine schedule", {"native": True, "stem": True, "batch_norm": True, "gap": True, "flips": True}),
)


def lenet(input_shape: tuple[int, int, int] = (255, 255, 3), image_size: tuple[int, int] = (255, 255),
          num_classes: int = 6, filters: tuple[int, ...] = (32, 64, 128), augment: bool = True,
          name: str = "lenet"):
    """The seed's LeNet, exactly: 255x255 RGB, seed augmentation, three conv/pool blocks, Flatten + Dense.

    ``Resizing`` and ``Rescaling(1/255)``; augmentation (active only in training):
    ``RandomFlip("horizontal_and_vertical")``, ``RandomRotation(0.2)``,
    ``RandomContrast(0.1)``, ``RandomZoom(0.1)``; per entry of ``filters`` a
    ``Conv2D(3x3, ReLU, padding="same")`` + ``MaxPooling2D(2)``; ``Flatten``,
    ``Dropout(0.5)``, ``Dense(128, ReLU)``, ``Dropout(0.3)``, softmax. Uncompiled.
    With the defaults it has 15,839,174 parameters.

    Examples
    --------
    >>> model = lenet(input_shape=(40, 40, 3), image_size=(32, 32), filters=(4, 8))
    >>> model.output_shape, model.count_params()
    ((None, 6), 66846)
    """
    import keras
    from keras import layers

    stack = [keras.Input(input_shape, name="image"), layers.Resizing(*image_size, name="resize"),
             layers.Rescaling(1 / 255, name="rescale")]
    if augment:
        stack += [layers.RandomFlip("horizontal_and_vertical", name="flip"),
                  layers.RandomRotation(0.2, name="rotate"), layers.RandomContrast(0.1, name="contrast"),
                  layers.RandomZoom(0.1, name="zoom")]
    for i, width in enumerate(filters, start=1):
        stack += [layers.Conv2D(width, 3, activation="relu", padding="same", name=f"conv{i}"),
                  layers.MaxPooling2D(2, name=f"pool{i}")]
    stack += [layers.Flatten(name="flatten"), layers.Dropout(0.5, name="dropout1"),
              layers.Dense(128, activation="relu", name="dense"), layers.Dropout(0.3, name="dropout2"),
              layers.Dense(num_classes, activation="softmax", name="probabilities")]
    return keras.Sequential(stack, name=name)


def seed_schedule(epoch: int, learning_rate: float) -> float:
    """The seed's ``LearningRateScheduler`` rule: keep the rate for 10 epochs, then x0.95 per epoch.

    Examples
    --------
    >>> seed_schedule(9, 1e-3), round(seed_schedule(10, 1e-3), 8)
    (0.001, 0.00095)
    """
    return learning_rate if epoch < 10 else learning_rate * 0.95


def cosine_with_warmup(peak: float, epochs: int, steps_per_epoch: int, warmup_fraction: float = 0.1):
    """Cosine decay to zero after a linear warmup from ``peak / 10`` over the first steps.

    Examples
    --------
    >>> schedule = cosine_with_warmup(3e-3, epochs=10, steps_per_epoch=10)
    >>> round(float(schedule(0)), 6), round(float(schedule(10)), 6), round(float(schedule(100)), 6)
    (0.0003, 0.003, 0.0)
    """
    import keras

    total = epochs * steps_per_epoch
    warmup = int(warmup_fraction * total)
    return keras.optimizers.schedules.CosineDecay(initial_learning_rate=peak / 10, decay_steps=total - warmup,
                                                  warmup_target=peak, warmup_steps=warmup)


def refined_cnn(input_shape: tuple[int, int, int] = (200, 200, 1), num_classes: int = 6,
                widths: tuple[int, ...] = (16, 32, 64, 128), stem_kernel: int = 4, stem_stride: int = 4,
                bn_momentum: float = 0.9, dropout: float = 0.2, augment: bool = True, name: str = "refined_cnn"):
    """The refined CNN of lesson 1: native-size grayscale input, batch normalisation, global average pooling.

    Rescaling and augmentation (flips both ways, training only) are inside the model.
    A stem ``Conv2D(widths[0], stem_kernel, strides=stem_stride)`` shrinks the image at
    once; each further width adds ``MaxPooling2D(2)`` (except before the first) and a
    3x3 ``Conv2D``; every convolution is followed by ``BatchNormalization(momentum=bn_momentum)``
    and ReLU. ``GlobalAveragePooling2D``, ``Dropout`` and a softmax close it. Uncompiled.
    With the defaults it has 98,758 parameters.

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


def ablation_cnn(native: bool = False, stem: bool = False, batch_norm: bool = False, gap: bool = False,
                 flips: bool = False, image_size: int = 200, seed_size: int = 255, num_classes: int = 6,
                 name: str = "ablation"):
    """One step of lesson 1's ablation: the seed's LeNet with some of the refined CNN's changes.

    With no change it has the seed's layers (200x200 RGB input resized to ``seed_size``;
    15,839,174 parameters at the defaults); with all five it builds the same layers as
    :func:`refined_cnn` (98,758 parameters). ``native``: ``image_size`` grayscale, no
    resizing. ``stem``: a 4x4 stride-4 convolution with 16 filters first, then 32/64/128
    filters with pooling between them (as the refined CNN). ``batch_norm``: convolutions
    without bias, then ``BatchNormalization(momentum=0.9)`` and ReLU. ``gap``: global
    average pooling, ``Dropout(0.2)`` and the softmax replace the Flatten + Dense head.
    ``flips``: random flips both ways replace the seed's four augmentation layers.

    Examples
    --------
    >>> ablation_cnn(native=True, stem=True, batch_norm=True, gap=True, flips=True).count_params()
    98758
    """
    import keras
    from keras import layers

    channels = 1 if native else 3
    stack = [keras.Input((image_size, image_size, channels), name="image")]
    if not native:
        stack.append(layers.Resizing(seed_size, seed_size, name="resize"))
    stack.append(layers.Rescaling(1 / 255, name="rescale"))
    if flips:
        stack.append(layers.RandomFlip("horizontal_and_vertical", name="flip"))
    else:
        stack += [layers.RandomFlip("horizontal_and_vertical", name="flip"),
                  layers.RandomRotation(0.2, name="rotate"), layers.RandomContrast(0.1, name="contrast"),
                  layers.RandomZoom(0.1, name="zoom")]

    def conv(width: int, kernel: int, strides: int, prefix: str) -> list:
        if not batch_norm:
            return [layers.Conv2D(width, kernel, strides=strides, padding="same", activation="relu",
                                  name=f"{prefix}_conv")]
        return [layers.Conv2D(width, kernel, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv"),
                layers.BatchNormalization(momentum=0.9, name=f"{prefix}_bn"), layers.ReLU(name=f"{prefix}_relu")]

    if stem:
        stack += conv(16, 4, 4, "stem")
        for i, width in enumerate((32, 64, 128), start=1):
            if i > 1:
                stack.append(layers.MaxPooling2D(2, name=f"block{i}_pool"))
            stack += conv(width, 3, 1, f"block{i}")
    else:
        for i, width in enumerate((32, 64, 128), start=1):
            stack += conv(width, 3, 1, f"block{i}") + [layers.MaxPooling2D(2, name=f"block{i}_pool")]
    if gap:
        stack += [layers.GlobalAveragePooling2D(name="gap"), layers.Dropout(0.2, name="dropout")]
    else:
        stack += [layers.Flatten(name="flatten"), layers.Dropout(0.5, name="dropout1"),
                  layers.Dense(128, activation="relu", name="dense"), layers.Dropout(0.3, name="dropout2")]
    stack.append(layers.Dense(num_classes, activation="softmax", name="probabilities"))
    return keras.Sequential(stack, name=name)
