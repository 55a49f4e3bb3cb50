"""The one rule for pretrained weights offline, shared by lessons 2, 3 and 4.

It is the course's rule for anything missing (see :mod:`defectlib.config`): full mode
is the real lesson, so missing weights stop a full run with a message; a fast or demo
run continues with random weights and says so. Either way the output states which
weights the model has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from defectlib.config import current

T = TypeVar("T")


def pretrained(build: Callable[[str | None], T], what: str) -> tuple[T, bool]:
    """Build a model with downloaded pretrained weights, with the course's offline rule.

    ``build(weights)`` is called with ``"imagenet"`` (or whatever the real path
    needs) first, and a line says that the pretrained weights are used. If the
    download fails (no internet, or ``DEFECTLIB_OFFLINE=1``): in fast mode (a demo
    run included) it says so plainly and calls ``build(None)`` (random weights) so
    the code path still runs; in full mode it raises ``RuntimeError`` saying how to
    get the weights or run the lesson as a demo. Returns
    ``(model, has_pretrained_weights)``.

    Examples
    --------
    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ.update(DEFECTLIB_FAST="1", DEFECTLIB_OFFLINE="1")
    >>> model, real = pretrained(lambda w: f"model with weights={w}", "a toy")  # doctest: +ELLIPSIS
    ===...
    >>> model, real
    ('model with weights=None', False)
    >>> os.environ["DEFECTLIB_OFFLINE"] = "0"
    >>> model, real = pretrained(lambda w: f"model with weights={w}", "a toy")
    Pretrained weights: a toy, loaded (downloaded, or from the local cache).
    >>> model, real
    ('model with weights=imagenet', True)
    >>> os.environ.clear(); os.environ.update(saved)
    """
    cfg = current()
    if not cfg.offline:
        try:
            model = build("imagenet")
        except Exception as error:  # noqa: BLE001 - any failure to fetch weights is handled below
            reason = f"{type(error).__name__}: {str(error)[:200]}"
        else:
            print(f"Pretrained weights: {what}, loaded (downloaded, or from the local cache).", flush=True)
            return model, True
    else:
        reason = "DEFECTLIB_OFFLINE=1, so no download was tried"
    how = ("Run with internet access once (the weights are then cached in ~/.keras/models or "
           "the KerasHub/Kaggle cache), or copy the cached weight files to this machine.")
    if not cfg.fast:
        raise RuntimeError(f"Could not load the pretrained weights for {what} ({reason}). {how} "
                           "Or run the lesson as a demo with random weights: set DEFECTLIB_FAST=1, or leave "
                           "DEFECTLIB_FAST unset on a machine without downloads.")
    mode = "DEMO RUN" if cfg.demo else "FAST MODE"
    bar = "=" * 78
    print(f"{bar}\nNO PRETRAINED WEIGHTS for {what}: {reason}.\n"
          f"{mode}: continuing with RANDOM weights so the code runs. This is NOT transfer\n"
          f"learning, and its numbers say nothing about pretrained models.\n{how}\n{bar}", flush=True)
    return build(None), False
