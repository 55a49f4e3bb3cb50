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


# --------------------------------------------------------------------------- lesson 3: vision transformers


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline


# --------------------------------------------------------------------------- lesson 5: inspection
