"""Lesson 4's 'Beyond one GPU': two replicas of the ResUNet train as one device does, on a CPU split in two.

TensorFlow splits a CPU into logical devices only before it starts, so the training runs in a
fresh Python process (the script below). Both runs start from the same weights and see the same
batches of 8 images; with MirroredStrategy each replica gets 4 of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r'''
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from defectlib.segmentation import resunet

rng = np.random.default_rng(0)
images = rng.uniform(0, 255, (32, 16, 32, 3)).astype("float32")
masks = (rng.uniform(size=(32, 16, 32, 4)) > 0.8).astype("float32")


def train(strategy, synchronized):
    keras.utils.set_random_seed(1)  # the same initial weights every time
    with strategy.scope():
        model = resunet((16, 32, 3), base_filters=2, synchronized=synchronized)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    batches = tf.data.Dataset.from_tensor_slices((images, masks)).batch(8)  # the global batch
    model.fit(batches, epochs=1, verbose=0)
    return [np.asarray(w) for w in model.weights]


def largest_difference(a, b):
    return float(max(np.abs(x - y).max() for x, y in zip(a, b)))


one = train(tf.distribute.OneDeviceStrategy("/cpu:0"), synchronized=False)
# On CPU devices the gradients are summed on one device (collective all-reduce is for GPUs).
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
print(json.dumps({"replicas": two.num_replicas_in_sync,
                  "synchronized": largest_difference(one, train(two, synchronized=True)),
                  "not synchronized": largest_difference(one, train(two, synchronized=False))}))
'''
TOLERANCE = 1e-4  # float32 sums in another order, over 4 steps


def test_two_replicas_give_the_weights_of_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["synchronized"] < TOLERANCE
    # Without synchronised batch norm each replica normalises with the statistics of its 4 images.
    assert result["not synchronized"] > 10 * TOLERANCE
