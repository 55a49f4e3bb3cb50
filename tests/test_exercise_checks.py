"""The exercises' self-checks (defectlib.exercises): right answer -> correct, wrong -> a hint, untouched -> not attempted.

Each check is tested with all three, and its hint must not contain the expected answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from defectlib import exercises
from defectlib.losses import kaggle_mean_dice
from defectlib.pipeline import TwoStageStats, clean_masks
from defectlib.rle import rle_encode


def test_report_gives_the_three_verdicts(capsys):
    def is_four(answer):
        return None if answer == 4 else "count again"

    assert exercises.report(None, is_four) == exercises.NOT_ATTEMPTED
    assert exercises.report(..., is_four) == exercises.NOT_ATTEMPTED
    assert exercises.report(4, is_four) == exercises.CORRECT
    assert exercises.report(5, is_four) == exercises.TRY_AGAIN
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "correct" and out[3] == "try again: count again"
    assert all(line.startswith("not attempted yet") for line in out[:2])


def test_an_answer_that_breaks_the_check_becomes_a_hint(capsys):
    assert exercises.report("four", lambda a: None if a + 0 == 4 else "no") == exercises.TRY_AGAIN
    assert "TypeError" in capsys.readouterr().out


# --------------------------------------------------------------------------- lesson 1: CNN from scratch

def test_class_means(capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 4, 4, 1), dtype=np.uint8), np.repeat(np.arange(3), 4)
    right = [images[labels == k].mean() for k in range(3)]
    assert exercises.class_means(right, images, labels) == exercises.CORRECT
    assert exercises.class_means(None, images, labels) == exercises.NOT_ATTEMPTED
    assert exercises.class_means(right[::-1], images, labels) == exercises.TRY_AGAIN
    assert "order" in capsys.readouterr().out
    assert exercises.class_means(np.array(right) / 255, images, labels) == exercises.TRY_AGAIN
    assert "0 to 255" in capsys.readouterr().out
    assert exercises.class_means([right[0] + 1, *right[1:]], images, labels) == exercises.TRY_AGAIN
    hint = capsys.readouterr().out
    assert "class 0 is too high" in hint and f"{right[0]:.1f}" not in hint


def test_width_runs(capsys):
    from defectlib.cnn import refined_cnn

    def run(widths):
        return {"parameters": refined_cnn(widths=widths).count_params(), "s per epoch": 1.0, "train accuracy": 0.5,
                "val accuracy": 0.5}

    all_widths = [(16, 32, 64), (16, 32, 64, 128), (16, 32, 64, 128, 256)]
    assert exercises.width_runs({str(w): run(w) for w in all_widths}) == exercises.CORRECT
    assert exercises.width_runs(None) == exercises.NOT_ATTEMPTED
    assert exercises.width_runs({str(w): run(w) for w in all_widths[:2]}) == exercises.TRY_AGAIN
    broken = {str(w): run(w) for w in all_widths}
    broken[str(all_widths[0])]["s per epoch"] = None
    assert exercises.width_runs(broken) == exercises.TRY_AGAIN


def test_own_cnn(capsys):
    import keras
    import numpy as np

    def cnn(second=32):
        return keras.Sequential([keras.Input((200, 200, 1)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
                                 keras.layers.MaxPooling2D(2),
                                 keras.layers.Conv2D(second, 3, padding="same", activation="relu"),
                                 keras.layers.MaxPooling2D(2), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(6, activation="softmax")])

    model = cnn()
    assert exercises.own_cnn(None) == exercises.NOT_ATTEMPTED
    assert exercises.own_cnn(model) == exercises.TRY_AGAIN                       # not compiled
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert exercises.own_cnn(model) == exercises.TRY_AGAIN
    assert "not trained yet" in capsys.readouterr().out.splitlines()[-1]
    model.fit(np.zeros((2, 200, 200, 1)), np.zeros(2), epochs=1, verbose=0)
    assert exercises.own_cnn(model) == exercises.CORRECT
    as_object = cnn()                                                            # the loss as a Keras object
    as_object.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy())
    as_object.fit(np.zeros((2, 200, 200, 1)), np.zeros(2), epochs=1, verbose=0)
    assert exercises.own_cnn(as_object) == exercises.CORRECT
    assert exercises.own_cnn(cnn(second=64)) == exercises.TRY_AGAIN
    assert "16 then 32" in capsys.readouterr().out.splitlines()[-1]


def test_lenet_two_blocks(capsys):
    from defectlib.cnn import lenet

    expected = lenet(filters=(32, 64)).count_params()
    assert exercises.lenet_two_blocks(expected) == exercises.CORRECT
    assert exercises.lenet_two_blocks(None) == exercises.NOT_ATTEMPTED
    assert exercises.lenet_two_blocks(lenet().count_params()) == exercises.TRY_AGAIN
    assert exercises.lenet_two_blocks(expected + 1) == exercises.TRY_AGAIN
    assert str(expected) not in capsys.readouterr().out



# --------------------------------------------------------------------------- lesson 2: transfer learning


def _base_and_head(freeze: bool):
    import keras

    base = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                             keras.layers.BatchNormalization(name="bn")], name="base")
    if freeze:
        base.trainable = False
    model = keras.Sequential([keras.Input((6, 6, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, name="head")])
    return model


def test_frozen_base_three_verdicts_and_no_answer_in_the_hints(capsys):
    model = _base_and_head(freeze=True)
    right = 4 * 3 + 3  # the head's kernel and bias; the frozen base's 3*3*3*4 + 4 + 2*4 (+ 2*4 statistics) do not count
    assert exercises.frozen_base(model, None) == exercises.NOT_ATTEMPTED
    assert exercises.frozen_base(model, ...) == exercises.NOT_ATTEMPTED
    assert exercises.frozen_base(model, right) == exercises.CORRECT
    assert exercises.frozen_base(model, right + 1) == exercises.TRY_AGAIN
    assert exercises.frozen_base(model, len(model.trainable_weights)) == exercises.TRY_AGAIN  # arrays, not numbers
    assert exercises.frozen_base(model, model.count_params()) == exercises.TRY_AGAIN  # frozen weights counted too
    assert exercises.frozen_base(model, float(right)) == exercises.TRY_AGAIN
    out = capsys.readouterr().out
    assert "too high" in out and "weight arrays" in out and "frozen ones too" in out and "whole number" in out
    assert str(right) not in out


def test_frozen_base_finds_a_base_that_is_not_frozen(capsys):
    import keras

    unfrozen = _base_and_head(freeze=False)
    count = sum(int(w.numpy().size) for w in unfrozen.trainable_weights)
    assert exercises.frozen_base(unfrozen, count) == exercises.TRY_AGAIN
    # The freeze loop that freezes nothing (lesson 2): `layers.trainable` on the module, not on the layer.
    from keras import layers
    buggy = _base_and_head(freeze=False)
    for layer in buggy.layers[0].layers:
        layers.trainable = False
    del layers.trainable
    assert exercises.frozen_base(buggy, count) == exercises.TRY_AGAIN
    everything = _base_and_head(freeze=True)
    everything.trainable = False
    assert exercises.frozen_base(everything, 0) == exercises.TRY_AGAIN
    flat = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert exercises.frozen_base(flat, 8) == exercises.TRY_AGAIN
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("try again: the base still has trainable weights") and out[1] == out[0]
    assert "nothing in the model is trainable" in out[2] and "no base network" in out[3]



def test_finetune_phases(tmp_path, capsys):
    import numpy as np

    from defectlib.transfer import transfer_model, unfreeze_top

    model = transfer_model("mobilenet_v2", image_size=(32, 32), input_shape=(32, 32, 3), weights=None)
    path = tmp_path / "copy.keras"
    model.save(path)
    right = []
    for n_layers in (10, 20):
        unfreeze_top(model, n_layers)
        right.append(int(sum(np.prod(w.shape) for w in model.trainable_weights)))
    assert right[1] > right[0]
    assert exercises.finetune_phases([], path) == exercises.NOT_ATTEMPTED
    assert exercises.finetune_phases(right, path) == exercises.CORRECT
    assert exercises.finetune_phases(right[::-1], path) == exercises.TRY_AGAIN
    assert exercises.finetune_phases([right[0], model.count_params()], path) == exercises.TRY_AGAIN
    assert "frozen weights too" in capsys.readouterr().out.splitlines()[-1]
    assert exercises.finetune_phases(right[:1], path) == exercises.TRY_AGAIN
    assert str(right[0]) not in capsys.readouterr().out


# --------------------------------------------------------------------------- lesson 3: vision transformers


def test_attention_weights(capsys):
    import numpy as np

    check = exercises.attention_weights
    uniform = np.full((1, 1, 400, 400), 1 / 400)
    assert check(None) == exercises.NOT_ATTEMPTED
    assert check(uniform) == exercises.CORRECT
    assert check(uniform[0, 0]) == exercises.CORRECT
    assert check(np.full((1, 1, 16, 16), 1 / 16), image_size=(64, 64), patch_size=16) == exercises.CORRECT
    assert check(np.full((1, 1, 100, 100), 1 / 100)) == exercises.TRY_AGAIN   # the 20x20 patches of the page
    assert "fewer tokens" in capsys.readouterr().out
    assert check(np.ones((1, 400, 64))) == exercises.TRY_AGAIN               # the tokens, not the weights
    assert check(np.ones((400, 400))) == exercises.TRY_AGAIN                 # scores before the softmax
    out = capsys.readouterr().out
    assert "sums to 1" in out and "400" not in out.replace("(1, 400, 64)", ""), "a hint gave the answer away"


def _small_hybrid(**kwargs):
    from defectlib.vit import hybrid

    return hybrid(image_size=(64, 64), stem_filters=(8, 16, 64), hidden_dim=64, num_heads=2, mlp_dim=32, **kwargs)


def test_hybrid_model(capsys):
    from defectlib.vit import build_vit

    assert exercises.hybrid_model(None) == exercises.NOT_ATTEMPTED
    assert exercises.hybrid_model(_small_hybrid(num_layers=1), num_layers=1) == exercises.CORRECT
    assert exercises.hybrid_model(_small_hybrid(num_layers=2), num_layers=1) == exercises.TRY_AGAIN
    pure = build_vit(image_size=(64, 64), patch_size=16, hidden_dim=64, num_heads=2, num_layers=1, mlp_dim=32)
    assert exercises.hybrid_model(pure, num_layers=1) == exercises.TRY_AGAIN  # no residual stem
    assert exercises.hybrid_model("a model", num_layers=1) == exercises.TRY_AGAIN
    out = capsys.readouterr().out
    assert "residual" in out and "found 2 TransformerBlock" in out


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline


def _kaggle_rle(mask):
    """An independent encoder for the tests: runs of the column-major pixels, numbered from 1."""
    pixels = np.concatenate([[0], mask.T.ravel() != 0, [0]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(pixels)) + 1
    return " ".join(f"{start} {end - start}" for start, end in zip(edges[0::2], edges[1::2]))


def _row_major_rle(mask):
    return _kaggle_rle(np.asarray(mask).T)


def _zero_based_rle(mask):
    tokens = _kaggle_rle(mask).split()
    return " ".join(str(int(t) - (i % 2 == 0)) for i, t in enumerate(tokens))


def _fails_on_real_masks(mask):
    return _kaggle_rle(mask) if mask.size < 1000 else "1 1"


@pytest.mark.parametrize("encode, verdict, hint", [
    (None, exercises.NOT_ATTEMPTED, "not attempted"),
    (lambda mask: None, exercises.NOT_ATTEMPTED, "not attempted"),
    (lambda mask: ..., exercises.NOT_ATTEMPTED, "not attempted"),
    (_kaggle_rle, exercises.CORRECT, "correct"),
    (_row_major_rle, exercises.TRY_AGAIN, "down each column"),
    (_zero_based_rle, exercises.TRY_AGAIN, "start at 0"),
    (lambda mask: [1, 3], exercises.TRY_AGAIN, "must return a string"),
    (lambda mask: _kaggle_rle(mask) or "1 0", exercises.TRY_AGAIN, "empty string"),
    (lambda mask: 1 / 0, exercises.TRY_AGAIN, "ZeroDivisionError"),
    (_kaggle_rle(np.eye(4)), exercises.TRY_AGAIN, "the function itself"),
    (_fails_on_real_masks, exercises.TRY_AGAIN, "wrong on a 256x1600 mask"),
])
def test_rle_encoding_check(encode, verdict, hint, capsys):
    real = np.zeros((256, 1600), np.uint8)
    real[100:140, 300:420] = 1
    assert exercises.rle_encoding(encode, mask=real) == verdict
    out = capsys.readouterr().out
    assert hint in out
    assert rle_encode(real) not in out and "2 3 10 2 16 1" not in out   # never the answer


@pytest.fixture(scope="module")
def validation_maps():
    rng = np.random.default_rng(0)
    truth = np.zeros((6, 16, 32, 4), np.uint8)
    truth[:3, 4:10, 5:20, 0] = 1
    truth[2:5, 2:6, 10:14, 1] = 1
    truth[4:, 8:, :, 2] = 1
    truth[1, :4, :4, 3] = 1
    # Per class: the "network" scores background pixels below `low` and defect pixels between `low` and `high`.
    low, high = np.array([0.12, 0.52, 0.82, 0.32]), np.array([0.24, 0.64, 0.94, 0.44])
    u = rng.random(truth.shape)
    maps = np.where(truth == 1, low + 0.04 + u * (high - low - 0.04), u * low)
    return truth, maps.astype(np.float32)


def test_class_thresholds_check(validation_maps, capsys):
    truth, maps = validation_maps
    dice = {t: kaggle_mean_dice(truth, clean_masks(maps, t), per_class=True) for t in exercises.CANDIDATE_THRESHOLDS}
    best = [max(exercises.CANDIDATE_THRESHOLDS, key=lambda t: dice[t][k]) for k in range(4)]
    assert len(set(best)) > 1                                        # the classes really need different thresholds
    assert exercises.class_thresholds(None, truth, maps) == exercises.NOT_ATTEMPTED
    assert exercises.class_thresholds(best, truth, maps) == exercises.CORRECT
    assert exercises.class_thresholds(np.array(best), truth, maps) == exercises.CORRECT
    wrong = [best[0], 0.05, *best[2:]]
    assert exercises.class_thresholds(wrong, truth, maps) == exercises.TRY_AGAIN
    assert exercises.class_thresholds([0.5] * 3, truth, maps) == exercises.TRY_AGAIN
    assert exercises.class_thresholds([0.5, 0.5, 0.5, 0.33], truth, maps) == exercises.TRY_AGAIN
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("not attempted") and out[1:3] == ["correct", "correct"]
    assert out[3] == "try again: class 2: another candidate gives a higher validation Dice for that class."
    assert "4 thresholds" in out[4] and "among the candidates" in out[5]
    assert not any(str(t) in line for t in best for line in out[3:4])


def test_gate_speedup_check(capsys):
    gated = TwoStageStats(10, list("abc"), np.zeros(10), {"load": 2.0, "classify": 3.0, "segment": 6.0,
                                                          "postprocess": 2.0, "total": 13.0})
    every = TwoStageStats(10, list("abcdefghij"), None, {"load": 2.0, "classify": 0.0, "segment": 20.0,
                                                         "postprocess": 6.0, "total": 28.0}, gate=False)
    expected = (0.2 + 2.6) / (0.2 + 0.3 + 0.3 * 2.6)
    assert exercises.gate_speedup(None, gated, every) == exercises.NOT_ATTEMPTED
    assert exercises.gate_speedup(expected * 1.005, gated, every) == exercises.CORRECT
    assert exercises.gate_speedup(3.0, gated, every) == exercises.TRY_AGAIN
    assert exercises.gate_speedup(1.0, gated, every) == exercises.TRY_AGAIN
    assert exercises.gate_speedup("fast", gated, every) == exercises.TRY_AGAIN
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "correct" and out[2].endswith("too high.") and out[3].endswith("too low.")
    assert "ValueError" in out[4] and f"{expected:.2f}" not in " ".join(out)


# --------------------------------------------------------------------------- lesson 5: inspection


def test_hit_rate(capsys):
    import numpy as np

    from defectlib.inspection import inside_any

    def right(peaks, boxes):
        return float(np.mean([inside_any(p, b) for p, b in zip(peaks, boxes)]))

    def strict(peaks, boxes):  # edges not counted
        return float(np.mean([any(b[0] < p[0] < b[2] and b[1] < p[1] < b[3] for b in bs)
                              for p, bs in zip(peaks, boxes)]))

    assert exercises.hit_rate(None) == exercises.NOT_ATTEMPTED
    assert exercises.hit_rate(right) == exercises.CORRECT
    assert exercises.hit_rate(strict) == exercises.TRY_AGAIN
    assert "edge" in capsys.readouterr().out.splitlines()[-1]
    assert exercises.hit_rate(lambda p, b: float(np.mean([any(inside_any(q, x) for x in b) for q in p]))) \
        == exercises.TRY_AGAIN                                          # any image's boxes
    assert exercises.hit_rate(lambda p, b: len(p) * right(p, b)) == exercises.TRY_AGAIN    # a count
    assert "between 0 and 1" in capsys.readouterr().out.splitlines()[-1]


def test_calibration_error(capsys):
    from defectlib.inspection import expected_calibration_error

    assert exercises.calibration_error(...) == exercises.NOT_ATTEMPTED
    assert exercises.calibration_error(expected_calibration_error) == exercises.CORRECT
    assert exercises.calibration_error(lambda p, y: 2 * expected_calibration_error(p, y)) == exercises.TRY_AGAIN
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (200, 4))
    probabilities, labels = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), rng.integers(0, 4, 200)
    hint = capsys.readouterr().out.splitlines()[-1]
    assert f"{expected_calibration_error(probabilities, labels):.3}"[2:] not in hint


def test_quantize_int8(capsys):
    import numpy as np

    def right(w):
        scale = np.abs(w).max() / 127
        return np.round(w / scale).astype(np.int8), scale

    assert exercises.quantize_int8(None) == exercises.NOT_ATTEMPTED
    assert exercises.quantize_int8(right) == exercises.CORRECT
    assert exercises.quantize_int8(lambda w: (np.floor(w / right(w)[1]).astype(np.int8), right(w)[1])) \
        == exercises.TRY_AGAIN                                                  # truncates instead of rounding
    assert "nearest" in capsys.readouterr().out.splitlines()[-1]
    assert exercises.quantize_int8(lambda w: (right(w)[0].astype(np.int16), right(w)[1])) == exercises.TRY_AGAIN
    assert exercises.quantize_int8(lambda w: (right(w)[0], np.abs(w).max() / 128)) == exercises.TRY_AGAIN



def test_cam_by_hand(capsys):
    import numpy as np

    assert exercises.cam_by_hand(None) == exercises.NOT_ATTEMPTED
    assert exercises.cam_by_hand(lambda f, k, c: np.einsum("hwk,k->hw", f, k[:, c])) == exercises.CORRECT
    assert exercises.cam_by_hand(lambda f, k, c: f @ k[:, c + 1]) == exercises.TRY_AGAIN      # another class
    assert exercises.cam_by_hand(lambda f, k, c: (f @ k)[..., c].T) == exercises.TRY_AGAIN    # rows and columns swapped
    assert "shape" in capsys.readouterr().out.splitlines()[-1]
