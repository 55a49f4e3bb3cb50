"""Run settings for the whole course, read from environment variables in one place.

=========================== =========================================================
Variable                    Meaning
=========================== =========================================================
``DEFECTLIB_FAST``          ``1`` for the fast mode used by CI and quick checks: small
                            data, one or two epochs, small images. Default ``0``.
``DEFECTLIB_SEED``          Global random seed. Default ``42``.
``DEFECTLIB_NEU_DIR``       Folder holding the NEU surface defect database (any of the
                            layouts :mod:`defectlib.neu` accepts).
``DEFECTLIB_SEVERSTAL_DIR`` Folder holding the Severstal competition files
                            (``train_images/`` and ``train.csv``).
``DEFECTLIB_DATA_HOME``     Where generated synthetic data sets and course outputs go.
                            Default ``~/.cache/defectlib``.
``DEFECTLIB_OFFLINE``       ``1`` to skip every download attempt (Kaggle data, ImageNet
                            and KerasHub weights) and go straight to the offline path.
=========================== =========================================================

Notebooks read these through :func:`settings`, never through ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={os.environ[name]!r}: expected one of 1/0, true/false, yes/no, on/off")


def _folder(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class Settings:
    """The settings of one run. Build it with :func:`settings`.

    Examples
    --------
    >>> s = Settings(fast=True, seed=1, neu_dir=None, severstal_dir=None,
    ...              data_home=Path("/tmp/x"), offline=True)
    >>> s.pick(full=30, fast=2)
    2
    """

    fast: bool
    seed: int
    neu_dir: Path | None
    severstal_dir: Path | None
    data_home: Path
    offline: bool

    def pick(self, full: T, fast: T) -> T:
        """Return ``fast`` in fast mode and ``full`` otherwise."""
        return fast if self.fast else full

    def __str__(self) -> str:
        mode = "FAST (small data, few epochs: numbers are not meaningful)" if self.fast else "full"
        return (
            f"mode: {mode}\nseed: {self.seed}\n"
            f"NEU folder: {self.neu_dir or '(not set)'}\n"
            f"Severstal folder: {self.severstal_dir or '(not set)'}\n"
            f"data home: {self.data_home}\noffline: {self.offline}"
        )


def settings() -> Settings:
    """Read the run settings from the environment.

    Examples
    --------
    >>> s = settings()
    >>> s.pick(full="full run", fast="quick check") in ("full run", "quick check")
    True
    """
    seed_text = os.environ.get("DEFECTLIB_SEED", "42").strip()
    try:
        seed = int(seed_text)
    except ValueError:
        raise ValueError(f"DEFECTLIB_SEED={seed_text!r}: expected a whole number") from None
    return Settings(
        fast=_flag("DEFECTLIB_FAST"),
        seed=seed,
        neu_dir=_folder("DEFECTLIB_NEU_DIR"),
        severstal_dir=_folder("DEFECTLIB_SEVERSTAL_DIR"),
        data_home=_folder("DEFECTLIB_DATA_HOME") or Path.home() / ".cache" / "defectlib",
        offline=_flag("DEFECTLIB_OFFLINE"),
    )


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and TensorFlow (through Keras) and return the seed used.

    Examples
    --------
    >>> seed_everything(3)
    3
    """
    import keras

    seed = settings().seed if seed is None else seed
    keras.utils.set_random_seed(seed)
    return seed


def banner(*lines: str) -> None:
    """Print ``lines`` between two rules of ``=``: how the data modules say what they use.

    Examples
    --------
    >>> banner("NEU data: SYNTHETIC", "not real results")  # doctest: +NORMALIZE_WHITESPACE
    ==============================================================================
    NEU data: SYNTHETIC
    not real results
    ==============================================================================
    """
    bar = "=" * 78
    print("\n".join([bar, *lines, bar]), flush=True)
