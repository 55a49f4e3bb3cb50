"""The exercises' self-checks, one section per lesson: expected answers come from the course's own code.

>>> _ = lenet_two_blocks(...)
not attempted yet: fill in the attempt cell above, run it, then run the check again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from defectlib.selfcheck import CORRECT, NOT_ATTEMPTED, TRY_AGAIN, attempted, compare, report  # noqa: F401

# --------------------------------------------------------------------------- lesson 1: CNN from scratch

def class_means(answer: Any, images: Any, labels: Any) -> str:
    """Lesson 1: the mean pixel value of each class's images, in label order.

    >>> import numpy as np
    >>> _ = class_means([2.0, 2.0], np.array([[0, 2], [2, 2]]), np.array([0, 1]))
    try again: the mean of class 0 is too high.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    classes = np.unique(labels)
    expected = np.array([images[labels == k].mean() for k in classes])

    def hint(means: Any) -> str | None:
        means = np.asarray(means, dtype=float).ravel()
        if means.shape != expected.shape:
            return f"give one mean per class: {len(expected)} numbers, in label order."
        if np.allclose(np.sort(means), np.sort(expected), atol=0.01) and not np.allclose(means, expected, atol=0.01):
            return "the right numbers in the wrong order: put them in label order, 0 first."
        if means.max() <= 1 < expected.max():
            return "the pixels go from 0 to 255: average them as they are stored."
        wrong = next((k for k in range(len(expected)) if abs(means[k] - expected[k]) > 0.01), None)
        return None if wrong is None else compare(means[wrong], expected[wrong], f"the mean of class {wrong}")

    return report(answer, hint)


def lenet_two_blocks(answer: Any) -> str:
    """Lesson 1: the parameter count of the seed's LeNet with two conv/pool blocks, ``filters=(32, 64)``.

    >>> _ = lenet_two_blocks(...)
    not attempted yet: fill in the attempt cell above, run it, then run the check again.
    """
    def hint(count: Any) -> str | None:
        import keras
        from defectlib.cnn import lenet

        keras.backend.clear_session()
        return compare(count, lenet(filters=(32, 64)).count_params(), "your parameter count")

    return report(answer, hint)


def width_runs(runs: Any) -> str:
    """Lesson 1: ``train_and_measure`` results of the refined CNN with one block less, as is and one block more.

    >>> _ = width_runs({"a": {"parameters": 1}})
    try again: train three models: widths (16, 32, 64), (16, 32, 64, 128), (16, 32, 64, 128, 256).
    """
    import keras
    from defectlib.cnn import refined_cnn

    all_widths = [(16, 32, 64), (16, 32, 64, 128), (16, 32, 64, 128, 256)]

    def hint(answer: Any) -> str | None:
        results = list(dict(answer).values())
        keras.backend.clear_session()
        expected = {refined_cnn(widths=w).count_params(): w for w in all_widths}
        found = {r.get("parameters") for r in results if isinstance(r, dict)}
        missing = [w for count, w in expected.items() if count not in found]
        if len(results) != 3 or missing:
            return "train three models: widths " + ", ".join(map(str, all_widths)) + "."
        if not all(0 <= r["val accuracy"] <= 1 and r["s per epoch"] > 0 for r in results):
            return "keep what train_and_measure returns for each run: its accuracies and its seconds per epoch."
        return None

    return report(runs, hint)


def own_cnn(model: Any) -> str:
    """Lesson 1: a small CNN written by the student, compiled for integer labels and fitted.

    >>> _ = own_cnn("a model")
    try again: expected a keras.Model, got str: keep the model you fitted.
    """
    import keras

    def hint(model: Any) -> str | None:
        if not isinstance(model, keras.Model):
            return f"expected a keras.Model, got {type(model).__name__}: keep the model you fitted."
        if tuple(model.input_shape) != (None, 200, 200, 1) or tuple(model.output_shape) != (None, 6):
            return "the model takes (200, 200, 1) images and gives 6 outputs, one per class."
        convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        if convs != [16, 32]:
            return f"expected two Conv2D layers of 16 then 32 filters, found {convs}."
        if not any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers):
            return "average each feature map over the positions (GlobalAveragePooling2D) before the last layer."
        if getattr(model.layers[-1].activation, "__name__", "") != "softmax":
            return "the last layer turns scores into probabilities: softmax."
        loss = getattr(model.loss, "name", None) or getattr(model.loss, "__name__", str(model.loss))
        if model.optimizer is None or loss != "sparse_categorical_crossentropy":
            return "compile it with the loss for integer labels, sparse_categorical_crossentropy."
        if int(model.optimizer.iterations) == 0:
            return "the model is compiled but not trained yet: fit it."
        return None

    return report(model, hint)


# --------------------------------------------------------------------------- lesson 2: transfer learning

def frozen_base(model, trainable_count: Any) -> str:
    """Lesson 2: the base inside ``model`` is frozen, the head trains, and ``trainable_count`` weights would change.

    >>> import keras
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="base")
    >>> _ = frozen_base(keras.Sequential([keras.Input((4,)), base, keras.layers.Dense(2)]), 8)  # doctest: +ELLIPSIS
    try again: the base still has trainable weights: ...
    """
    import keras
    def hint(count: Any) -> str | None:
        bases = [layer for layer in getattr(model, "layers", []) if isinstance(layer, keras.Model)]
        if not bases:
            return "the model has no base network inside it: use the base model as one layer of the new model."
        if any(base.trainable_weights for base in bases):
            return ("the base still has trainable weights: fit would change the pretrained features. "
                    "Freeze the base model itself, then count again.")
        expected = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        if expected == 0:
            return "nothing in the model is trainable any more: the new head must stay trainable."
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool):
            return f"give the count as a whole number, not {type(count).__name__}."
        if count != expected and count == len(model.trainable_weights):
            return "that is the number of weight arrays (tensors); count the numbers inside them."
        if count != expected and count == model.count_params():
            return "that counts every weight of the model, frozen ones too; count only those fit would update."
        return compare(count, expected, "your count of trainable weights")

    return report(trainable_count, hint)


def finetune_phases(counts: Any, model_path: Any) -> str:
    """Lesson 2: the weights ``fit`` updates after ``unfreeze_top(model, 10)``, then 20, from the model saved at ``model_path``.

    >>> _ = finetune_phases([], "copy.keras")
    not attempted yet: fill in the attempt cell above, run it, then run the check again.
    """
    import keras
    from defectlib.transfer import unfreeze_top

    def hint(answer: Any) -> str | None:
        model = keras.saving.load_model(model_path, safe_mode=True)
        expected, arrays, total = [], [], model.count_params()
        for n_layers in (10, 20):
            unfreeze_top(model, n_layers)
            expected.append(int(sum(np.prod(w.shape) for w in model.trainable_weights)))
            arrays.append(len(model.trainable_weights))
        answer = [int(a) for a in answer]
        if len(answer) != 2:
            return "one count per fine-tuning phase: two numbers, top 10 first."
        for phase, (mine, right) in enumerate(zip(answer, expected), start=1):
            if mine == arrays[phase - 1] != right:
                return f"phase {phase}: that is the number of weight arrays; count the numbers inside them."
            if mine == total != right:
                return f"phase {phase}: that counts frozen weights too; count only those fit updates."
            wrong = compare(mine, right, f"phase {phase}: your count")
            if wrong:
                return wrong + " Count after unfreeze_top, from model.trainable_weights."
        return None

    return report(None if isinstance(counts, list) and not counts else counts, hint)


# --------------------------------------------------------------------------- lesson 3: vision transformers

def attention_weights(weights: Any, image_size: tuple[int, int] = (200, 200), patch_size: int = 10) -> str:
    """Lesson 3: one head's attention weights over the tokens of one image cut into ``patch_size`` patches.

    >>> import numpy as np
    >>> _ = attention_weights(np.full((1, 1, 16, 16), 1 / 16), image_size=(40, 40), patch_size=10)
    correct
    """
    n_tokens = (image_size[0] // patch_size) * (image_size[1] // patch_size)

    def hint(answer: Any) -> str | None:
        matrix = np.asarray(answer, dtype=float)
        matrix = matrix.reshape(matrix.shape[-2:]) if matrix.ndim > 2 and np.prod(matrix.shape[:-2]) == 1 else matrix
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            return ("expected one head's weights for one image: one row per token that asks, one column per "
                    f"token it looks at; got shape {np.shape(answer)}.")
        if matrix.shape[0] != n_tokens:
            return (f"your matrix has {'more' if matrix.shape[0] > n_tokens else 'fewer'} tokens than a "
                    f"{image_size[0]}x{image_size[1]} image cut into {patch_size}x{patch_size} patches gives.")
        if not np.allclose(matrix.sum(axis=1), 1, atol=1e-3):
            return "each row of attention weights is a softmax and sums to 1: ask for return_attention_scores=True."
        return None

    return report(weights, hint)


def hybrid_model(model: Any, num_layers: int = 2, hidden_dim: int = 64, num_classes: int = 6) -> str:
    """Lesson 3: a hybrid CNN + transformer: softmax over the classes, a residual stem, tokens, ``num_layers`` blocks.

    >>> _ = hybrid_model(None)
    not attempted yet: fill in the attempt cell above, run it, then run the check again.
    """
    import keras

    def hint(model):
        if not isinstance(model, keras.Model):
            return f"expected a keras.Model, got {type(model).__name__}: return the model from your function."
        if tuple(model.output_shape) != (None, num_classes):
            return f"the output should hold one probability per class ({num_classes} classes)."
        height, width = model.input_shape[1:3]
        expected = (-(-height // 16)) * (-(-width // 16))
        if not any(isinstance(layer, keras.layers.Add) for layer in model.layers):
            return "no residual connection found: each residual block adds its input to its output (layers.Add)."
        shapes = [tuple(layer.output.shape) for layer in model.layers
                  if len(getattr(layer.output, "shape", ())) == 3]
        widths = [shape for shape in shapes if shape[-1] == hidden_dim]
        if not widths:
            return f"no sequence of tokens of width {hidden_dim} found: project each stem position to a token."
        if not any(shape[1] == expected for shape in widths):
            tokens = widths[0][1]
            return (f"your tokens number {tokens}, which is too {'many' if tokens > expected else 'few'}: one token "
                    "per position of the stem's last feature map (stride 4, then 2, then 2, 'same' padding).")
        blocks = sum(type(layer).__name__ == "TransformerBlock" for layer in model.layers)
        if blocks != num_layers:
            return f"found {blocks} TransformerBlock layer(s), expected {num_layers}."
        return None

    return report(model, hint)


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline

def _rle_hint(encode: Callable, masks: list) -> str | None:
    from .rle import rle_encode

    if not callable(encode):
        return "pass the function itself (my_rle_encode), not what it returns."
    for mask in masks:
        got, expected = encode(mask.copy()), rle_encode(mask)
        if got == expected:
            continue
        if not isinstance(got, str):
            return f"your function returned {type(got).__name__}; it must return a string of 'start length' pairs."
        where = f"a {mask.shape[0]}x{mask.shape[1]} mask with {int((mask != 0).sum())} set pixels"
        if not mask.any():
            return "an empty mask has no runs: it encodes as the empty string."
        if got == rle_encode(mask.T):  # column-major order of the transpose is row-major order of the mask
            return "your pixels run along the rows; Kaggle numbers them down each column first."
        tokens, right = got.split(), expected.split()
        if len(tokens) == len(right) and all(
                int(a) == int(b) - (i % 2 == 0) for i, (a, b) in enumerate(zip(tokens, right)) if a.isdigit()):
            return "your pixel numbers start at 0; Kaggle's start at 1."
        return f"wrong on {where}: decode your string with rle_decode(..., shape={mask.shape}) and compare."
    return None


def rle_encoding(encode: Any, mask: Any = None) -> str:
    """Lesson 4: ``encode(mask)`` gives the string :func:`defectlib.rle.rle_encode` gives, on test masks and ``mask``.

    >>> from defectlib.rle import rle_encode
    >>> _ = rle_encoding(rle_encode)
    correct
    """
    random_runs = (np.random.default_rng(4).random((6, 9)) < 0.4).astype(np.uint8)  # runs cross column ends
    masks = [np.array([[0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 0, 1]], np.uint8),
             np.zeros((3, 5), np.uint8), np.ones((3, 5), np.uint8), random_runs]
    masks += [np.asarray(mask)] if mask is not None else []
    try:
        first = encode(masks[0].copy()) if callable(encode) else encode
    except Exception:  # noqa: BLE001 - a broken attempt is attempted: the hint reports the error
        first = "raised"
    return report(None if first is None or first is Ellipsis else encode, lambda fn: _rle_hint(fn, masks))


CANDIDATE_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""The mask thresholds the class-wise threshold exercise chooses from: 0.05, 0.10, ..., 0.95."""


def class_thresholds(thresholds: Any, true_masks: Any, probabilities: Any, min_area: Any = 0) -> str:
    """Lesson 4: each class's threshold, from :data:`CANDIDATE_THRESHOLDS`, gives that class's best validation Dice.

    >>> import numpy as np
    >>> truth = np.zeros((1, 4, 4, 2), "uint8"); truth[0, :2, :2, 0] = 1
    >>> _ = class_thresholds([0.5, 0.5], truth, np.where(truth == 1, 0.6, 0.3))
    correct
    """
    from .losses import kaggle_mean_dice
    from .pipeline import clean_masks

    def hint(answer: Any) -> str | None:
        values = np.asarray(answer, dtype=float).ravel()
        n = np.shape(true_masks)[-1]
        if values.shape != (n,):
            return f"give {n} thresholds, one per class, in class order."
        if not np.isclose(values[:, None], np.array(CANDIDATE_THRESHOLDS)).any(axis=1).all():
            return "choose each threshold among the candidates 0.05, 0.10, ..., 0.95."

        def dice(t: Any) -> np.ndarray:
            return kaggle_mean_dice(true_masks, clean_masks(probabilities, t, min_area=min_area), per_class=True)

        best = np.max([dice(t) for t in CANDIDATE_THRESHOLDS], axis=0)
        worse = [k + 1 for k, (mine, top) in enumerate(zip(dice(values), best)) if mine < top - 1e-9]
        if worse:
            return f"class {', '.join(map(str, worse))}: another candidate gives a higher validation Dice for that class."
        return None

    return report(thresholds, hint)


def gate_speedup(predicted: Any, gated: Any, every: Any) -> str:
    """Lesson 4: the gate's speed-up predicted from per-image times of the two runs, within 1 %.

    Expected ``(t_load + t_seg) / (t_load + t_cls + f t_seg)``: times from ``every``, ``t_cls`` and the share sent
    on ``f`` from ``gated``.

    >>> from defectlib.pipeline import TwoStageStats
    >>> gated = TwoStageStats(4, ["a"], None, {"load": 1.0, "classify": 1.0, "segment": 1.0, "postprocess": 1.0})
    >>> every = TwoStageStats(4, list("abcd"), None, {"load": 1.0, "segment": 4.0, "postprocess": 2.0}, gate=False)
    >>> _ = gate_speedup(7 / 3.5, gated, every)
    correct
    """
    n = gated.n_images
    t_load, t_cls = every.seconds["load"] / n, gated.seconds["classify"] / n
    t_seg = (every.seconds["segment"] + every.seconds["postprocess"]) / n
    expected = (t_load + t_seg) / (t_load + t_cls + gated.n_segmented / n * t_seg)
    return report(predicted, lambda answer: compare(float(answer), expected, "your predicted speed-up",
                                                      tolerance=0.01 * expected))


# --------------------------------------------------------------------------- lesson 5: inspection

def cam_by_hand(cam) -> str:
    """Lesson 5: ``cam(features, kernel, c)`` is one image's class activation map for class ``c``, shape (h, w).

    >>> _ = cam_by_hand(lambda features, kernel, c: features.sum(axis=-1))
    try again: each position's value is the dot product of its feature vector with column c of the kernel.
    """
    rng = np.random.default_rng(5)
    features, kernel = rng.normal(size=(3, 4, 8)), rng.normal(size=(8, 6))

    def hint(fn):
        got = np.asarray(fn(features.copy(), kernel.copy(), 2), dtype=float)
        if got.shape != features.shape[:2]:
            return f"one value per position: the map's shape is the features' (rows, columns), not {got.shape}."
        if not np.allclose(got, features @ kernel[:, 2]):
            return "each position's value is the dot product of its feature vector with column c of the kernel."
        return None

    return report(cam, hint)


def hit_rate(rate: Any) -> str:
    """Lesson 5: ``rate(peaks, boxes)`` is the share of images whose peak ``(x, y)`` lies in one of its own boxes.

    >>> _ = hit_rate(lambda peaks, boxes: 1.0)  # doctest: +ELLIPSIS
    try again: ...
    """
    from defectlib.inspection import inside_any

    rng = np.random.default_rng(7)
    peaks = rng.integers(0, 100, (40, 2))
    boxes = [np.sort(rng.integers(0, 100, (int(rng.integers(1, 4)), 2, 2)), axis=1).reshape(-1, 4)
             for _ in peaks]
    boxes[0] = np.array([[peaks[0][0], peaks[0][1], peaks[0][0] + 5, peaks[0][1] + 5]])  # a peak on a corner
    boxes[1] = np.array([[0, 0, 1, 1]])
    peaks[1] = boxes[2][0, :2]                     # inside another image's box only

    def hint(fn):
        got = float(fn(peaks.copy(), [b.copy() for b in boxes]))
        expected = float(np.mean([inside_any(p, b) for p, b in zip(peaks, boxes)]))
        if got > 1:
            return "give the share of images hit, between 0 and 1, not their number."
        if np.isclose(got, expected):
            return None
        inside = [any(b[0] < x < b[2] and b[1] < y < b[3] for b in bs) for (x, y), bs in zip(peaks, boxes)]
        if np.isclose(got, np.mean(inside)):
            return "a peak on a box's edge or corner is a hit: VOC boxes include their edges."
        return ("compare each image's peak with that image's boxes only, and count an image once "
                "however many of its boxes it hits.")

    return report(rate, hint)


def calibration_error(ece) -> str:
    """Lesson 5: ``ece(probabilities, labels)`` is the expected calibration error with 10 equal-width bins.

    >>> _ = calibration_error(lambda p, y: 0.0)  # doctest: +ELLIPSIS
    try again: your error is too low. ...
    """
    from defectlib.inspection import expected_calibration_error

    def hint(fn):
        for seed in range(3):
            rng = np.random.default_rng(seed)
            logits = rng.normal(0, 2, (200, 4))
            probabilities, labels = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), rng.integers(0, 4, 200)
            off = compare(float(fn(probabilities, labels)), expected_calibration_error(probabilities, labels),
                          "your error", tolerance=1e-6)
            if off:
                return off + " Bin by the top probability, compare mean confidence and accuracy per bin, " \
                             "weight each bin by its share of the images."
        return None

    return report(ece, hint)


def quantize_int8(quantize: Any) -> str:
    """Lesson 5: ``quantize(weights)`` returns ``(int8 array, scale)``, symmetric, one scale per tensor.

    >>> import numpy as np
    >>> _ = quantize_int8(lambda w: (np.round(w).astype("int8"), 1.0))
    try again: the scale maps the largest absolute weight to 127: it is max(abs(weights)) / 127.
    """
    rng = np.random.default_rng(8)
    tensors = [rng.normal(0, 0.05, (3, 3, 16, 32)).astype("float32"), rng.normal(0, 2, 50).astype("float32")]

    def hint(fn):
        for weights in tensors:
            q, scale = fn(weights.copy())
            q = np.asarray(q)
            if q.dtype != np.int8 or q.shape != weights.shape:
                return f"return an int8 array of the weights' shape, not {q.dtype} {q.shape}."
            if not np.isclose(float(scale), np.abs(weights).max() / 127, rtol=1e-4):
                return "the scale maps the largest absolute weight to 127: it is max(abs(weights)) / 127."
            if np.abs(q.astype(float) * float(scale) - weights).max() > float(scale) / 2 + 1e-6:
                return "round weights / scale to the nearest integer: q * scale must be within scale / 2 of w."
        return None

    return report(quantize, hint)
