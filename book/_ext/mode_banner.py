"""Sphinx extension of the course site: a bar on every page when the lessons ran as demos or in fast mode.

A site built without the real data or the pretrained weights looks like a course with broken
results (one-dot learning curves, one-column confusion matrices, an empty submission table).
This extension decides the run's mode the way the lessons do (``defectlib.config.settings``
with every need of the course) when the build starts, and if any lesson would run as a demo,
or fast mode was asked for, it sets the theme's announcement bar to say so. It is part of
``_config.yml``, so ``make book`` and a plain ``jupyter-book build .`` give the same site.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config


def announcement(fast: bool, demo_reason: str) -> str:
    """The bar's text for a run's mode, or ``""`` for a full build.

    Examples
    --------
    >>> announcement(False, "")
    ''
    >>> announcement(True, "")[:40]
    'This site was built in FAST MODE (DEFEC'
    """
    if demo_reason:
        return (f"This site was built as a DEMO: {demo_reason}. Lessons that lacked their data or weights ran "
                "at fast-mode sizes on synthetic stand-ins or random weights, and their numbers are not results; "
                "each lesson says at its top what it used.")
    if fast:
        return ("This site was built in FAST MODE (DEFECTLIB_FAST=1): small data and few epochs, so its numbers "
                "are not results.")
    return ""


def set_announcement(app: Sphinx, config: Config) -> None:
    from defectlib.config import NEEDS, settings

    run = settings(needs=NEEDS)
    text = announcement(run.fast, run.demo_reason)
    if text:
        config.html_theme_options = {**(config.html_theme_options or {}), "announcement": text}


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", set_announcement)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
