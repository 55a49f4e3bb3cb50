"""Model builders for the lessons, and the one rule for pretrained weights offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from defectlib.config import settings

T = TypeVar("T")


def pretrained(build: Callable[[str | None], T], what: str) -> tuple[T, bool]:
    """Build a model with downloaded pretrained weights, with the course's offline rule.

    ``build(weights)`` is called with ``"imagenet"`` (or whatever the real path
    needs) first. If the download fails (no internet, or ``DEFECTLIB_OFFLINE=1``):
    in fast mode it says so plainly and calls ``build(None)`` (random weights) so
    the code path still runs; otherwise it raises ``RuntimeError`` saying how to
    get the weights. Returns ``(model, has_pretrained_weights)``.

    Examples
    --------
    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ.update(DEFECTLIB_FAST="1", DEFECTLIB_OFFLINE="1")
    >>> model, real = pretrained(lambda w: f"model with weights={w}", "a toy")  # doctest: +ELLIPSIS
    ===...
    >>> model, real
    ('model with weights=None', False)
    >>> os.environ.clear(); os.environ.update(saved)
    """
    cfg = settings()
    if not cfg.offline:
        try:
            return build("imagenet"), True
        except Exception as error:  # noqa: BLE001 - any failure to fetch weights is handled below
            reason = f"{type(error).__name__}: {str(error)[:200]}"
    else:
        reason = "DEFECTLIB_OFFLINE=1, so no download was tried"
    how = ("Run with internet access once (the weights are then cached in ~/.keras/models or "
           "the KerasHub/Kaggle cache), or copy the cached weight files to this machine.")
    if not cfg.fast:
        raise RuntimeError(f"Could not load the pretrained weights for {what} ({reason}). {how}")
    bar = "=" * 78
    print(f"{bar}\nNO PRETRAINED WEIGHTS for {what}: {reason}.\n"
          "FAST MODE: continuing with RANDOM weights so the code runs. This is NOT transfer\n"
          f"learning, and its numbers say nothing about pretrained models.\n{how}\n{bar}")
    return build(None), False


# --------------------------------------------------------------------------- lesson 1: CNNs from scratch


# --------------------------------------------------------------------------- lesson 2: transfer learning

TRANSFER_BASES = {"mobilenet_v2": "MobileNetV2", "resnet50_v2": "ResNet50V2"}
"""The ImageNet networks :func:`transfer_model` can adapt (both expect pixels scaled to [-1, 1])."""


def transfer_model(name: str = "mobilenet_v2", num_classes: int = 6, image_size: tuple[int, int] = (224, 224),
                   input_shape: tuple[int, int, int] = (200, 200, 3), weights: str | None = "imagenet",
                   dropout: float = 0.2):
    """An ImageNet network with a new classification head, its base frozen.

    The model takes RGB pixels ``0..255`` at ``input_shape`` (NEU images are
    200x200) and does its own preprocessing with serialisable layers: ``resize``
    to ``image_size``, then ``preprocess`` (``Rescaling(1/127.5, offset=-1)``, the
    [-1, 1] scaling both networks were trained with). The base is the layer named
    ``"base"``, frozen (``trainable=False``) and called with ``training=False``;
    the head is ``pool`` (global average), ``dropout`` and ``classifier`` (softmax).
    ``weights`` is ``"imagenet"`` (downloaded once) or ``None`` (random).

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
    base = network(include_top=False, weights=weights, input_shape=(*image_size, 3), name="base")
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
    called with ``training=False``. Returns the names of the layers made trainable
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



# --------------------------------------------------------------------------- lesson 3: vision transformers


# --------------------------------------------------------------------------- lesson 4: Severstal models

# Registered with Keras when defectlib.models is imported, so `.keras` files that use it load
# in safe mode (no Lambda layer: a Lambda stores Python bytecode, which safe mode refuses).
import keras as _keras  # noqa: E402


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
    base = _keras.applications.ResNet50(include_top=False, weights=weights, input_shape=input_shape, name="base")
    base.trainable = False
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="defect")(x)
    return _keras.Model(inputs, outputs, name="defect_classifier")


def _residual_block(x, filters: int, name: str):
    """Conv-BN-ReLU-Conv-BN plus a 1x1 convolution shortcut, added, then ReLU."""
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut")(x)
    shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resunet(input_shape: tuple[int, int, int] = (128, 800, 3), num_classes: int = 4, base_filters: int = 16,
            output_bias: float = -3.0):
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
    multiples of 16.

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
    x = _residual_block(x, base_filters, "stem")
    skips = []
    for stage in range(1, 5):
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{stage}_pool")(x)
        x = _residual_block(x, base_filters * 2**stage, f"down{stage}")
    for stage in range(4, 0, -1):
        x = layers.UpSampling2D(2, name=f"up{stage}_upsample")(x)
        x = layers.Concatenate(name=f"up{stage}_skip")([x, skips[stage - 1]])
        x = _residual_block(x, base_filters * 2 ** (stage - 1), f"up{stage}")
    outputs = layers.Conv2D(num_classes, 1, activation="sigmoid", name="masks",
                            bias_initializer=_keras.initializers.Constant(output_bias))(x)
    return _keras.Model(inputs, outputs, name="resunet")
