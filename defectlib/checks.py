"""Self-checks for the exercises: attempt first, check yourself, then look at the solution.

Every check takes the student's answer and prints exactly one verdict, which it also
returns so tests can read it:

- ``"correct"``;
- ``"not attempted"``: the answer is still the placeholder of the attempt cell
  (``None`` or ``...``);
- ``"try again"``: with a hint that says what is wrong, never what the answer is.

The expected answers are computed here from the course's own code, never typed in, so a
check stays right when a lesson changes its models. Checks live in one module, one small
function each, grouped by lesson; ``tests/test_checks.py`` tests every one of them with a
right, a wrong and an untouched answer.

Examples
--------
>>> verdict = report(None, lambda answer: None)
not attempted yet: fill in the attempt cell above, run it, then run the check again.
>>> verdict
'not attempted'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CORRECT = "correct"
NOT_ATTEMPTED = "not attempted"
TRY_AGAIN = "try again"


def attempted(answer: Any) -> bool:
    """False while an answer is still the attempt cell's placeholder (``None`` or ``...``).

    Examples
    --------
    >>> attempted(None), attempted(...), attempted(0), attempted([None])
    (False, False, True, True)
    """
    return answer is not None and answer is not Ellipsis


def report(answer: Any, hint_for: Callable[[Any], str | None]) -> str:
    """Print and return the verdict on ``answer``.

    ``hint_for(answer)`` returns ``None`` when the answer is right, else a hint that
    says what is wrong without giving the answer away. An exception raised by it (an
    answer of the wrong type, a function that fails) becomes a hint too.

    Examples
    --------
    >>> report(4, lambda a: None if a == 2 + 2 else "add again")
    correct
    'correct'
    >>> report(5, lambda a: None if a == 2 + 2 else "add again")
    try again: add again
    'try again'
    """
    if not attempted(answer):
        print("not attempted yet: fill in the attempt cell above, run it, then run the check again.")
        return NOT_ATTEMPTED
    try:
        hint = hint_for(answer)
    except Exception as error:  # noqa: BLE001 - any failure of the student's answer is a hint
        hint = f"checking your answer raised {type(error).__name__}: {error}"
    if hint is None:
        print(CORRECT)
        return CORRECT
    print(f"{TRY_AGAIN}: {hint}")
    return TRY_AGAIN


def _compare(answer: float, expected: float, what: str, tolerance: float = 0.0) -> str | None:
    """A hint for a number that should equal ``expected``: too high or too low, never the value.

    Examples
    --------
    >>> _compare(10, 12, "the parameter count")
    'the parameter count is too low.'
    >>> _compare(12.001, 12, "the size", tolerance=0.01) is None
    True
    """
    if abs(float(answer) - float(expected)) <= tolerance:
        return None
    return f"{what} is too {'high' if answer > expected else 'low'}."


# Each lesson's checks go in its own section below: small, answer-free, tested in tests/test_checks.py.

# --------------------------------------------------------------------------- lesson 1: CNN from scratch


# --------------------------------------------------------------------------- lesson 2: transfer learning


# --------------------------------------------------------------------------- lesson 3: vision transformers


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline


# --------------------------------------------------------------------------- lesson 5: inspection


def _random_cases(seed: int = 0, n: int = 200, classes: int = 4):
    """Random probabilities and labels for the lesson-5 function checks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, rng.integers(0, classes, n)


def pointing_hit(hit) -> str:
    """Lesson 5: ``hit(point, boxes)`` says whether the pixel ``(x, y)`` lies in one of the ``xmin, ymin, xmax, ymax`` boxes.

    Examples
    --------
    >>> pointing_hit(lambda point, boxes: True)
    try again: a point outside every box counts as a hit.
    'try again'
    """
    import numpy as np

    from defectlib.inspection import inside_any

    boxes = np.array([[10, 20, 50, 40], [60, 0, 80, 100]])
    cases = [((30, 30), "a point inside a box"), ((55, 30), "a point outside every box"),
             ((70, 90), "a point inside the second box"), ((50, 40), "a point on a box's corner (edges count)"),
             ((30, 10), "a point above a box, inside its x range"), ((5, 30), "a point left of a box, inside its y range")]

    def hint(fn):
        for point, what in cases:
            got, expected = bool(fn(point, boxes)), inside_any(point, boxes)
            if got != expected:
                return f"{what} counts as {'a hit' if got else 'a miss'}."
        if fn((30, 30), np.zeros((0, 4), int)):
            return "an image without boxes cannot be hit."
        return None

    return report(hit, hint)


def calibration_error(ece) -> str:
    """Lesson 5: ``ece(probabilities, labels)`` is the expected calibration error with 10 equal-width bins.

    Examples
    --------
    >>> calibration_error(lambda p, y: 0.0)  # doctest: +ELLIPSIS
    try again: your error is too low. ...
    'try again'
    """
    from defectlib.inspection import expected_calibration_error

    def hint(fn):
        for seed in range(3):
            probabilities, labels = _random_cases(seed)
            off = _compare(float(fn(probabilities, labels)), expected_calibration_error(probabilities, labels),
                           "your error", tolerance=1e-6)
            if off:
                return off + " Bin by the top probability, compare mean confidence and accuracy per bin, " \
                             "weight each bin by its share of the images."
        return None

    return report(ece, hint)


def weight_bytes(answer) -> str:
    """Lesson 5: ``(float32_bytes, int8_bytes)``, what the refined CNN's parameters take stored as float32 and as 8-bit.

    Examples
    --------
    >>> weight_bytes((1, 1))
    try again: the float32 size is too low.
    'try again'
    """
    from defectlib.cnn import refined_cnn

    parameters = refined_cnn().count_params()

    def hint(pair):
        float32_bytes, int8_bytes = pair
        return _compare(float32_bytes, 4 * parameters, "the float32 size") or _compare(int8_bytes, parameters,
                                                                                        "the 8-bit size")

    return report(answer, hint)
