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


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline


# --------------------------------------------------------------------------- lesson 5: inspection


def test_pointing_hit(capsys):
    from defectlib.inspection import inside_any

    assert checks.pointing_hit(None) == checks.NOT_ATTEMPTED
    assert checks.pointing_hit(inside_any) == checks.CORRECT

    def strict(point, boxes):  # edges not counted
        return any(b[0] < point[0] < b[2] and b[1] < point[1] < b[3] for b in boxes)

    assert checks.pointing_hit(strict) == checks.TRY_AGAIN
    assert "edges" in capsys.readouterr().out.splitlines()[-1]


def test_calibration_error(capsys):
    from defectlib.inspection import expected_calibration_error

    assert checks.calibration_error(...) == checks.NOT_ATTEMPTED
    assert checks.calibration_error(expected_calibration_error) == checks.CORRECT
    assert checks.calibration_error(lambda p, y: 2 * expected_calibration_error(p, y)) == checks.TRY_AGAIN
    probabilities, labels = checks._random_cases(0)
    hint = capsys.readouterr().out.splitlines()[-1]
    assert f"{expected_calibration_error(probabilities, labels):.3}"[2:] not in hint


def test_weight_bytes(capsys):
    from defectlib.cnn import refined_cnn

    n = refined_cnn().count_params()
    assert checks.weight_bytes(None) == checks.NOT_ATTEMPTED
    assert checks.weight_bytes((4 * n, n)) == checks.CORRECT
    assert checks.weight_bytes((4 * n, 4 * n)) == checks.TRY_AGAIN
    hint = capsys.readouterr().out.splitlines()[-1]
    assert "8-bit size is too high" in hint and str(n) not in hint
