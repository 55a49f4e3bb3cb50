"""Lesson 1's ablation: the seed's LeNet with any subset of the refined CNN's changes, one row at a time."""

from __future__ import annotations

#: Rows of lesson 1's ablation (:func:`ablation_cnn` arguments); the last changes only the schedule.
ABLATION_STEPS: tuple[tuple[str, dict], ...] = (
    ("seed LeNet", {}),
    ("+ native 200x200 grayscale", {"native": True}),
    ("+ strided stem", {"native": True, "stem": True}),
    ("+ batch norm", {"native": True, "stem": True, "batch_norm": True}),
    ("+ global average pooling", {"native": True, "stem": True, "batch_norm": True, "gap": True}),
    ("+ flips only", {"native": True, "stem": True, "batch_norm": True, "gap": True, "flips": True}),
    ("+ cosine schedule", {"native": True, "stem": True, "batch_norm": True, "gap": True, "flips": True}),
)


def ablation_cnn(native: bool = False, stem: bool = False, batch_norm: bool = False, gap: bool = False,
                 flips: bool = False, image_size: int = 200, seed_size: int = 255, num_classes: int = 6,
                 name: str = "ablation"):
    """One step of lesson 1's ablation: the seed's LeNet with some of the refined CNN's changes.

    Parameters
    ----------
    native : ``image_size`` grayscale input, not resized to ``seed_size`` RGB.
    stem : a 4x4 stride-4 convolution (16 filters) first, then 32/64/128 filters with pooling between them.
    batch_norm : convolutions without bias, then ``BatchNormalization(momentum=0.9)`` and ReLU.
    gap : global average pooling and ``Dropout(0.2)`` replace the Flatten + Dense head.
    flips : random flips only, instead of the seed's four augmentation layers.

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
