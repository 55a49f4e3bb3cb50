"""How the exercises' self-checks speak: one verdict each, "correct", "not attempted" or "try again" with a hint.

>>> verdict = report(None, lambda answer: None)
not attempted yet: fill in the attempt cell above, run it, then run the check again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Verdict(str):
    """A check's verdict: a plain string that Jupyter and Colab do not echo under the check's own message.

    >>> Verdict("correct") == "correct"
    True
    """

    def _ipython_display_(self) -> None:
        pass


CORRECT = Verdict("correct")
NOT_ATTEMPTED = Verdict("not attempted")
TRY_AGAIN = Verdict("try again")


def attempted(answer: Any) -> bool:
    """False while an answer is still the attempt cell's placeholder (``None`` or ``...``).

    >>> attempted(None), attempted(...), attempted(0), attempted([None])
    (False, False, True, True)
    """
    return answer is not None and answer is not Ellipsis


def report(answer: Any, hint_for: Callable[[Any], str | None]) -> str:
    """Print and return the verdict on ``answer``; ``hint_for(answer)`` is ``None`` when right, else a hint.

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


def compare(answer: float, expected: float, what: str, tolerance: float = 0.0) -> str | None:
    """A hint for a number that should equal ``expected``: too high or too low, never the value."""
    if abs(float(answer) - float(expected)) <= tolerance:
        return None
    return f"{what} is too {'high' if answer > expected else 'low'}."
