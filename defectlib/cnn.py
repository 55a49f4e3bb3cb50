"""Lesson 1's models: the seed's LeNet, the refined CNN and their schedules.

Generated from notebooks/01_cnn_from_scratch.ipynb by `make lib` (tools/make_lib.py): do not edit.
Change the cells marked #@save in the notebook, then run `make lib`.
"""

import keras
from keras import layers


def lenet(input_shape=(255, 255, 3), image_size=(255, 255), num_classes=6, filters=(32, 64, 128), augment=True,
          name="lenet"):
    stack = [keras.Input(input_shape, name="image"),
             layers.Resizing(*image_size, name="resize"),
             layers.Rescaling(1 / 255, name="rescale")]
    if augment:
        stack += [layers.RandomFlip("horizontal_and_vertical", name="flip"),
                  layers.RandomRotation(0.2, name="rotate"),
                  layers.RandomContrast(0.1, name="contrast"),
                  layers.RandomZoom(0.1, name="zoom")]
    for i, width in enumerate(filters, start=1):
        stack += [layers.Conv2D(width, 3, activation="relu", padding="same", name=f"conv{i}"),
                  layers.MaxPooling2D(2, name=f"pool{i}")]
    stack += [layers.Flatten(name="flatten"),
              layers.Dropout(0.5, name="dropout1"),
              layers.Dense(128, activation="relu", name="dense"),
              layers.Dropout(0.3, name="dropout2"),
              layers.Dense(num_classes, activation="softmax", name="probabilities")]
    return keras.Sequential(stack, name=name)


def seed_schedule(epoch, learning_rate):
    return learning_rate if epoch < 10 else learning_rate * 0.95


def conv_bn_relu(width, kernel, strides, prefix, bn_momentum):
    return [layers.Conv2D(width, kernel, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv"),
            layers.BatchNormalization(momentum=bn_momentum, name=f"{prefix}_bn"),
            layers.ReLU(name=f"{prefix}_relu")]


def refined_cnn(input_shape=(200, 200, 1), num_classes=6, widths=(16, 32, 64, 128), stem_kernel=4, stem_stride=4,
                bn_momentum=0.9, dropout=0.2, augment=True, name="refined_cnn"):
    stack = [keras.Input(input_shape, name="image"), layers.Rescaling(1 / 255, name="rescale")]
    if augment:
        stack.append(layers.RandomFlip("horizontal_and_vertical", name="flip"))
    stack += conv_bn_relu(widths[0], stem_kernel, stem_stride, "stem", bn_momentum)
    for i, width in enumerate(widths[1:], start=1):
        if i > 1:
            stack.append(layers.MaxPooling2D(2, name=f"block{i}_pool"))
        stack += conv_bn_relu(width, 3, 1, f"block{i}", bn_momentum)
    stack += [layers.GlobalAveragePooling2D(name="gap"),
              layers.Dropout(dropout, name="dropout"),
              layers.Dense(num_classes, activation="softmax", name="probabilities")]
    return keras.Sequential(stack, name=name)


def cosine_with_warmup(peak, epochs, steps_per_epoch, warmup_fraction=0.1):
    total = epochs * steps_per_epoch
    warmup = int(warmup_fraction * total)
    return keras.optimizers.schedules.CosineDecay(initial_learning_rate=peak / 10, decay_steps=total - warmup,
                                                  warmup_target=peak, warmup_steps=warmup)
