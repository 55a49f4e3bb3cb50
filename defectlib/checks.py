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

def neu_image_shape(answer: Any) -> str:
    """Lesson 1: the shape of one NEU image as ``neu_arrays`` loads it (height, width, channels).

    The expected shape is the input of the refined CNN, which reads the images as stored.

    Examples
    --------
    >>> _ = neu_image_shape((1, 2))
    try again: an image array has three axes: height, width and channels.
    """
    def hint(shape: Any) -> str | None:
        import keras

        from defectlib.cnn import refined_cnn

        keras.backend.clear_session()
        expected = tuple(refined_cnn().inputs[0].shape[1:])
        shape = tuple(int(n) for n in shape)
        if len(shape) != len(expected):
            return "an image array has three axes: height, width and channels."
        if shape[:2] != expected[:2]:
            return "look again at height and width: print x_train.shape (the first number counts the images)."
        if shape[2] != expected[2]:
            return "count the channels again: are the NEU images colour or gray?"
        return None

    return report(answer, hint)


def lenet_two_blocks(answer: Any) -> str:
    """Lesson 1: the parameter count of the seed's LeNet with two conv/pool blocks, ``filters=(32, 64)``.

    Examples
    --------
    >>> _ = lenet_two_blocks(...)
    not attempted yet: fill in the attempt cell above, run it, then run the check again.
    """
    def hint(count: Any) -> str | None:
        import keras

        from defectlib.cnn import lenet

        keras.backend.clear_session()
        expected = lenet(filters=(32, 64)).count_params()
        return _compare(count, expected, "your parameter count")

    return report(answer, hint)



# --------------------------------------------------------------------------- lesson 2: transfer learning


# --------------------------------------------------------------------------- lesson 3: vision transformers


# --------------------------------------------------------------------------- lesson 4: Severstal pipeline


# --------------------------------------------------------------------------- lesson 5: inspection
