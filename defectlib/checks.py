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


def _rle_test_masks(mask: Any = None) -> list:
    """The masks an RLE encoder is tried on: the lesson's 4x4 example, empty, full, random runs, and ``mask``."""
    import numpy as np

    random_runs = (np.random.default_rng(4).random((6, 9)) < 0.4).astype(np.uint8)  # runs cross column ends
    masks = [np.array([[0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 0, 1]], np.uint8),
             np.zeros((3, 5), np.uint8), np.ones((3, 5), np.uint8), random_runs]
    return masks + ([np.asarray(mask)] if mask is not None else [])


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
    """Lesson 4, "Encode a mask yourself": does ``encode(mask)`` give the same string as ``defectlib.rle``?

    ``encode`` is the student's function from a 2-D 0/1 mask to Kaggle's
    run-length encoding. It is tried on the lesson's 4x4 example, an empty and a
    full mask, a random one, and ``mask`` (for example a real 256x1600 mask) when
    given, against :func:`defectlib.rle.rle_encode`. A function that still returns
    ``None`` or ``...`` is not attempted yet.

    Examples
    --------
    >>> from defectlib.rle import rle_encode
    >>> rle_encoding(rle_encode)
    correct
    'correct'
    >>> rle_encoding(lambda mask: None)
    not attempted yet: fill in the attempt cell above, run it, then run the check again.
    'not attempted'
    """
    masks = _rle_test_masks(mask)
    try:
        first = encode(masks[0].copy()) if callable(encode) else encode
    except Exception:  # noqa: BLE001 - a broken attempt is attempted: the hint reports the error
        first = "raised"
    return report(None if first is None or first is Ellipsis else encode, lambda fn: _rle_hint(fn, masks))


CANDIDATE_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""The mask thresholds the class-wise threshold exercise chooses from: 0.05, 0.10, ..., 0.95."""


def class_thresholds(thresholds: Any, true_masks: Any, probabilities: Any, min_area: Any = 0) -> str:
    """Lesson 4, "Class-wise thresholds": is each class's threshold one of the best candidates for that class?

    ``thresholds`` has one value per class, each from :data:`CANDIDATE_THRESHOLDS`;
    it is right when every class's mean Dice on ``(true_masks, probabilities)``
    (validation masks and probability maps, ``(n, height, width, classes)``) after
    :func:`defectlib.pipeline.clean_masks` with ``min_area`` equals the best any
    candidate reaches for that class (ties all count).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((1, 4, 4, 2), "uint8"); truth[0, :2, :2, 0] = 1
    >>> maps = np.where(truth == 1, 0.6, 0.3).astype("float32")     # class 1 needs a threshold above 0.3
    >>> class_thresholds([0.5, 0.5], truth, maps)
    correct
    'correct'
    >>> class_thresholds([0.2, 0.5], truth, maps)
    try again: class 1: another candidate gives a higher validation Dice for that class.
    'try again'
    """
    import numpy as np

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
    """Lesson 4, "What does the gate buy in time?": the speed-up predicted from the per-image times.

    ``gated`` and ``every`` are the :class:`~defectlib.pipeline.TwoStageStats` of the
    run with the gate and of the run that segments every image. Expected:
    ``(t_load + t_seg + t_post) / (t_load + t_cls + f (t_seg + t_post))`` with
    ``t_load``, ``t_seg``, ``t_post`` from ``every``, ``t_cls`` from ``gated`` (seconds
    per image) and ``f`` the share of images the gate sends on; within 1 %.

    Examples
    --------
    >>> from defectlib.pipeline import TwoStageStats
    >>> gated = TwoStageStats(4, ["a"], None, {"load": 1.0, "classify": 1.0, "segment": 1.0, "postprocess": 1.0})
    >>> every = TwoStageStats(4, list("abcd"), None, {"load": 1.0, "classify": 0.0, "segment": 4.0, "postprocess": 2.0},
    ...                       gate=False)
    >>> gate_speedup(7 / 3.5, gated, every)
    correct
    'correct'
    >>> gate_speedup(1.0, gated, every)
    try again: your predicted speed-up is too low.
    'try again'
    """
    n = gated.n_images
    t_load, t_cls = every.seconds["load"] / n, gated.seconds["classify"] / n
    t_seg = (every.seconds["segment"] + every.seconds["postprocess"]) / n
    expected = (t_load + t_seg) / (t_load + t_cls + gated.n_segmented / n * t_seg)
    return report(predicted, lambda answer: _compare(float(answer), expected, "your predicted speed-up",
                                                      tolerance=0.01 * expected))


# --------------------------------------------------------------------------- lesson 5: inspection
