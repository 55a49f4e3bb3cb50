"""Evaluation that cannot misalign labels and predictions."""

from __future__ import annotations

import numpy as np


def predict_dataset(model, dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` over ``dataset`` once; return ``(images, y_true, probabilities)``.

    Labels and predictions are taken from the *same* batch in the same pass, so
    they line up even if the dataset shuffles. This avoids a common pitfall: calling
    ``model.predict(ds)`` and then iterating ``ds`` again for the labels. With a
    shuffled dataset the two passes see different orders, and a confusion matrix
    built that way compares predictions with the labels of other images. (The
    lesson-1 seed did not fall into it: it loaded validation with ``shuffle=False``
    and collected each batch's labels and predictions in one loop.)

    Examples
    --------
    >>> import keras, tensorflow as tf
    >>> x = np.arange(6, dtype="float32").reshape(6, 1)
    >>> ds = tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 2).astype("int32"))).shuffle(6).batch(2)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda t: tf.concat([3 - t, t - 2], 1))])
    >>> images, y, p = predict_dataset(model, ds)
    >>> bool((p.argmax(1) == y).all())
    True
    """
    images, labels, probabilities = [], [], []
    for x, y in dataset:
        probabilities.append(np.asarray(model(x, training=False)))
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    if not labels:
        raise ValueError("the dataset is empty")
    return np.concatenate(images), np.concatenate(labels), np.concatenate(probabilities)
