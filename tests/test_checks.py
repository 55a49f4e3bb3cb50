"""The exercises' self-checks (defectlib.checks): right answer -> correct, wrong -> a hint, untouched -> not attempted.

Each check is tested with all three, and its hint must not contain the expected answer.
"""

from __future__ import annotations

from defectlib import checks


def test_report_gives_the_three_verdicts(capsys):
    def is_four(answer):
        return None if answer == 4 else "count again"

    assert checks.report(None, is_four) == checks.NOT_ATTEMPTED
    assert checks.report(..., is_four) == checks.NOT_ATTEMPTED
    assert checks.report(4, is_four) == checks.CORRECT
    assert checks.report(5, is_four) == checks.TRY_AGAIN
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "correct" and out[3] == "try again: count again"
    assert all(line.startswith("not attempted yet") for line in out[:2])


def test_an_answer_that_breaks_the_check_becomes_a_hint(capsys):
    assert checks.report("four", lambda a: None if a + 0 == 4 else "no") == checks.TRY_AGAIN
    assert "TypeError" in capsys.readouterr().out


# --------------------------------------------------------------------------- lesson 1: CNN from scratch

def test_neu_image_shape(capsys):
    assert checks.neu_image_shape((200, 200, 1)) == checks.CORRECT
    assert checks.neu_image_shape(None) == checks.NOT_ATTEMPTED
    for wrong in [(200, 200, 3), (1152, 200, 200, 1), (255, 255, 1)]:
        assert checks.neu_image_shape(wrong) == checks.TRY_AGAIN
    hints = capsys.readouterr().out
    assert "(200, 200, 1)" not in hints and "200" not in hints


def test_lenet_two_blocks(capsys):
    from defectlib.cnn import lenet

    expected = lenet(filters=(32, 64)).count_params()
    assert checks.lenet_two_blocks(expected) == checks.CORRECT
    assert checks.lenet_two_blocks(None) == checks.NOT_ATTEMPTED
    assert checks.lenet_two_blocks(lenet().count_params()) == checks.TRY_AGAIN
    assert checks.lenet_two_blocks(expected + 1) == checks.TRY_AGAIN
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
    assert checks.frozen_base(model, None) == checks.NOT_ATTEMPTED
    assert checks.frozen_base(model, ...) == checks.NOT_ATTEMPTED
    assert checks.frozen_base(model, right) == checks.CORRECT
    assert checks.frozen_base(model, right + 1) == checks.TRY_AGAIN
    assert checks.frozen_base(model, len(model.trainable_weights)) == checks.TRY_AGAIN  # arrays, not numbers
    assert checks.frozen_base(model, model.count_params()) == checks.TRY_AGAIN  # frozen weights counted too
    assert checks.frozen_base(model, float(right)) == checks.TRY_AGAIN
    out = capsys.readouterr().out
    assert "too high" in out and "weight arrays" in out and "frozen ones too" in out and "whole number" in out
    assert str(right) not in out


def test_frozen_base_finds_a_base_that_is_not_frozen(capsys):
    import keras

    unfrozen = _base_and_head(freeze=False)
    count = sum(int(w.numpy().size) for w in unfrozen.trainable_weights)
    assert checks.frozen_base(unfrozen, count) == checks.TRY_AGAIN
    # The freeze loop that freezes nothing (lesson 2): `layers.trainable` on the module, not on the layer.
    from keras import layers
    buggy = _base_and_head(freeze=False)
    for layer in buggy.layers[0].layers:
        layers.trainable = False
    del layers.trainable
    assert checks.frozen_base(buggy, count) == checks.TRY_AGAIN
    everything = _base_and_head(freeze=True)
    everything.trainable = False
    assert checks.frozen_base(everything, 0) == checks.TRY_AGAIN
    flat = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert checks.frozen_base(flat, 8) == checks.TRY_AGAIN
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("try again: the base still has trainable weights") and out[1] == out[0]
    assert "nothing in the model is trainable" in out[2] and "no base network" in out[3]



# --------------------------------------------------------------------------- lesson 3: vision transformers


def test_patches_and_attention(capsys):
    check = checks.patches_and_attention
    assert check((None, None)) == checks.NOT_ATTEMPTED
    assert check((400, (400, 400))) == checks.CORRECT
    assert check((400, 160_000)) == checks.CORRECT
    assert check((16, (16, 16)), image_size=(64, 64), patch_size=16) == checks.CORRECT
    assert check((20, (20, 20))) == checks.TRY_AGAIN  # patches along one side only
    assert check((400, (400, 64))) == checks.TRY_AGAIN  # tokens x width: not the attention matrix
    assert check((400, 400)) == checks.TRY_AGAIN
    assert check((400, None)) == checks.TRY_AGAIN
    out = capsys.readouterr().out
    assert "400" not in out and "160000" not in out and "160,000" not in out, "a hint gave the answer away"
    assert "too low" in out


def _small_hybrid(**kwargs):
    from defectlib.vit import hybrid

    return hybrid(image_size=(64, 64), stem_filters=(8, 16, 64), hidden_dim=64, num_heads=2, mlp_dim=32, **kwargs)


def test_hybrid_model(capsys):
    from defectlib.vit import vit

    assert checks.hybrid_model(None) == checks.NOT_ATTEMPTED
    assert checks.hybrid_model(_small_hybrid(num_layers=1), num_layers=1) == checks.CORRECT
    assert checks.hybrid_model(_small_hybrid(num_layers=2), num_layers=1) == checks.TRY_AGAIN
    pure = vit(image_size=(64, 64), patch_size=16, hidden_dim=64, num_heads=2, num_layers=1, mlp_dim=32)
    assert checks.hybrid_model(pure, num_layers=1) == checks.TRY_AGAIN  # no residual stem
    assert checks.hybrid_model("a model", num_layers=1) == checks.TRY_AGAIN
    out = capsys.readouterr().out
    assert "residual" in out and "found 2 TransformerBlock" in out


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline


# --------------------------------------------------------------------------- lesson 5: inspection
