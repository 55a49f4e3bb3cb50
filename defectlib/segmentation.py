"""Lesson 4: the Severstal defect/no-defect gate and the ResUNet segmenter."""

from __future__ import annotations

# Registered with Keras when defectlib.segmentation is imported, so `.keras` files that use it load
# in safe mode (no Lambda layer: a Lambda stores Python bytecode, which safe mode refuses).
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


def defect_classifier(input_shape: tuple[int, int, int] = (128, 800, 3), weights: str | None = "imagenet",
                      dropout: float = 0.3, hidden: int = 64):
    """Stage 1 of the Severstal pipeline: a frozen ResNet50 and a small head giving P(defect).

    Takes RGB pixels ``0..255`` at ``input_shape`` (height and width at least 32);
    ``preprocess`` (:class:`CaffePreprocess`) does ResNet50's own preprocessing. The
    base is the layer named ``"base"``: frozen with ``base.trainable = False``
    (which freezes every layer inside it) and called with ``training=False`` (its
    batch normalisation keeps the ImageNet statistics). The head: global average
    pooling, dropout, a ``hidden``-unit ReLU layer and one sigmoid unit.

    Examples
    --------
    >>> model = defect_classifier((32, 64, 3), weights=None)
    >>> [layer.name for layer in model.layers]
    ['image', 'preprocess', 'base', 'pool', 'dropout', 'hidden', 'defect']
    >>> len(model.get_layer("base").trainable_weights), model.output_shape
    (0, (None, 1))
    """
    from keras import layers

    inputs = _keras.Input(input_shape, name="image")
    x = CaffePreprocess(name="preprocess")(inputs)
    # The base's own input is named, so that two builds give the same get_config (no automatic name).
    base = _keras.applications.ResNet50(include_top=False, weights=weights, name="base",
                                        input_tensor=_keras.Input(input_shape, name="base_input"))
    base.trainable = False
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="defect")(x)
    return _keras.Model(inputs, outputs, name="defect_classifier")


def small_gate(input_shape: tuple[int, int, int] = (64, 400, 3), filters: tuple[int, ...] = (8, 16, 32, 64),
               dropout: float = 0.2, bn_momentum: float = 0.9):
    """A cheap stage 1: a small CNN trained from scratch, giving P(defect) per image.

    RGB pixels ``0..255`` in (``rescale`` divides by 255). One block per entry of
    ``filters``: a 3x3 convolution with stride 2 (each block halves the size),
    batch normalisation (momentum ``bn_momentum``, as in :func:`resunet`) and
    ReLU. Then **global max pooling**: a defect is a local mark, and the image is
    defective if any place shows one, so the strongest response anywhere counts
    (average pooling would dilute a small mark over the whole strip). Dropout and
    one sigmoid unit end it. It needs no pretrained weights, and at a quarter of
    the original resolution it costs a few milliseconds per image on a CPU,
    a small fraction of what the ResUNet costs.

    Examples
    --------
    >>> model = small_gate((32, 200, 3))
    >>> [layer.name for layer in model.layers][:5], model.output_shape
    (['image', 'rescale', 'conv1', 'bn1', 'relu1'], (None, 1))
    >>> model.count_params()
    24953
    """
    from keras import layers

    inputs = _keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for i, n in enumerate(filters, start=1):
        x = layers.Conv2D(n, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="defect")(x)
    return _keras.Model(inputs, outputs, name="small_gate")


def _resunet_block(x, filters: int, name: str, momentum: float):
    """Conv-BN-ReLU-Conv-BN plus a 1x1 convolution shortcut, added, then ReLU."""
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut")(x)
    shortcut = layers.BatchNormalization(momentum=momentum, name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resunet(input_shape: tuple[int, int, int] = (128, 800, 3), num_classes: int = 4, base_filters: int = 16,
            output_bias: float = -3.0, bn_momentum: float = 0.9):
    """Stage 2: a ResUNet giving one sigmoid probability map per defect class.

    RGB pixels ``0..255`` in (``rescale`` divides by 255). The encoder is a
    residual block with ``base_filters`` filters, then four stages of 2x2 max
    pooling and a residual block with twice the filters (``down1`` ... ``down4``,
    the last one the bottleneck at 1/16 of the resolution). The decoder has four
    stages (``up4`` ... ``up1``) of 2x upsampling, concatenation with the encoder
    output of the same resolution (the skip connection) and a residual block with
    half the filters. A 1x1 convolution with ``num_classes`` sigmoid outputs ends
    it; its bias starts at ``output_bias`` (a probability of about 0.05: defects
    are rare, so training starts from nearly empty masks). Height and width must be
    multiples of 16. The batch normalisation layers use ``bn_momentum`` 0.9 rather
    than Keras's 0.99: their running statistics, used at prediction time, then
    follow the changing weights within a few dozen steps, which matters for the
    short trainings of this course (with 0.99 a model that segments well in
    training mode can predict empty masks after a few hundred steps).

    Examples
    --------
    >>> model = resunet((32, 64, 3), base_filters=4)
    >>> model.output_shape
    (None, 32, 64, 4)
    >>> [layer.name for layer in model.layers if layer.name.endswith("_out")]
    ['stem_out', 'down1_out', 'down2_out', 'down3_out', 'down4_out', 'up4_out', 'up3_out', 'up2_out', 'up1_out']
    """
    from keras import layers

    height, width = input_shape[:2]
    if height % 16 or width % 16:
        raise ValueError(f"resunet: height and width must be multiples of 16 (four 2x poolings), got {height}x{width}")
    inputs = _keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = _resunet_block(x, base_filters, "stem", bn_momentum)
    skips = []
    for stage in range(1, 5):
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{stage}_pool")(x)
        x = _resunet_block(x, base_filters * 2**stage, f"down{stage}", bn_momentum)
    for stage in range(4, 0, -1):
        x = layers.UpSampling2D(2, name=f"up{stage}_upsample")(x)
        x = layers.Concatenate(name=f"up{stage}_skip")([x, skips[stage - 1]])
        x = _resunet_block(x, base_filters * 2 ** (stage - 1), f"up{stage}", bn_momentum)
    outputs = layers.Conv2D(num_classes, 1, activation="sigmoid", name="masks",
                            bias_initializer=_keras.initializers.Constant(output_bias))(x)
    return _keras.Model(inputs, outputs, name="resunet")
