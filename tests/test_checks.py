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


# --------------------------------------------------------------------------- lesson 2: transfer learning


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
