"""Timing helpers for training runs."""

from __future__ import annotations


def epoch_timer():
    """A Keras callback that records the wall-clock seconds of every epoch in ``.seconds``.

    The first epoch also includes tracing the model into a graph; the median over the
    epochs is the fair "time per epoch".

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> timer = epoch_timer()
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros(4), epochs=3, verbose=0, callbacks=[timer])
    >>> len(timer.seconds), all(s > 0 for s in timer.seconds)
    (3, True)
    """
    import time

    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()
