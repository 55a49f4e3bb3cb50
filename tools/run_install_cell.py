"""Run a notebook's first code cell (the install cell) as Colab runs it, from another repository URL.

``make test-colab`` installs ``defectlib`` into its Colab-like environment with the very code
students run, pointed at this checkout instead of the course's GitHub repository::

    python tools/run_install_cell.py notebooks/01_cnn_from_scratch.ipynb file:///path/to/checkout

The cell's ``REPOSITORY = "..."`` line is replaced by the URL given; everything else runs as
written (``pip install git+<URL>``: with a ``file://`` URL pip clones the committed HEAD, as
Colab installs the repository's committed state).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPOSITORY_LINE = re.compile(r'^REPOSITORY = "[^"]*"', re.MULTILINE)


def install_cell(notebook: Path) -> str:
    """The source of the first code cell of ``notebook``."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    source = next(c["source"] for c in cells if c["cell_type"] == "code")
    return "".join(source) if isinstance(source, list) else source


def with_repository(code: str, url: str) -> str:
    """``code`` with its ``REPOSITORY = "..."`` line set to ``url``.

    Examples
    --------
    >>> with_repository('REPOSITORY = "https://github.com/a/b"  # note\\nprint(REPOSITORY)', "file:///x")
    'REPOSITORY = "file:///x"  # note\\nprint(REPOSITORY)'
    """
    new, count = REPOSITORY_LINE.subn(f'REPOSITORY = "{url}"', code)
    if count != 1:
        raise ValueError(f"expected one line 'REPOSITORY = \"...\"' in the install cell, found {count}")
    return new


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("url", help="the repository to install from, e.g. file:///path/to/checkout")
    args = parser.parse_args(argv)
    exec(compile(with_repository(install_cell(args.notebook), args.url), str(args.notebook), "exec"), {})


if __name__ == "__main__":
    main()
