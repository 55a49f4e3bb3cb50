"""Fail when installing defectlib changed a package that Colab pins.

``make test-colab`` saves ``pip freeze`` before and after installing the course into an
environment that has Colab's versions (``constraints/colab.txt``), then runs::

    python tools/check_pins.py constraints/colab.txt before.txt after.txt

It prints one line per pinned package and exits 1 if any of them is not at its pinned
version after the install (or was not at it before: then the environment is not Colab's).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503).

    Examples
    --------
    >>> normalise("Keras_Hub"), normalise("opencv.python-headless")
    ('keras-hub', 'opencv-python-headless')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements or ``pip freeze`` text (comments and URLs skipped).

    Examples
    --------
    >>> read_pins("# Colab\\nnumpy==2.1.3\\ndefectlib @ file:///x\\nKeras_Hub==0.26.0  # note\\n")
    {'numpy': '2.1.3', 'keras-hub': '0.26.0'}
    """
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalise(name)] = version.strip()
    return pins


def compare(pins: dict[str, str], before: dict[str, str], after: dict[str, str]) -> tuple[list[str], bool]:
    """One report line per pin and whether every pinned package is at its pin before and after.

    Examples
    --------
    >>> lines, ok = compare({"numpy": "2.1.3"}, {"numpy": "2.1.3"}, {"numpy": "2.4.0"})
    >>> ok, lines[0]
    (False, 'numpy                      pinned 2.1.3     before 2.1.3     after 2.4.0     CHANGED')
    """
    lines, ok = [], True
    for name, pin in pins.items():
        was, now = before.get(name, "-"), after.get(name, "-")
        verdict = "unchanged" if was == now == pin else "CHANGED" if was == pin else "NOT INSTALLED AS PINNED"
        ok &= verdict == "unchanged"
        lines.append(f"{name:26} pinned {pin:9} before {was:9} after {now:9} {verdict}")
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pins", type=Path)
    parser.add_argument("before", type=Path, help="pip freeze before installing defectlib")
    parser.add_argument("after", type=Path, help="pip freeze after installing defectlib")
    args = parser.parse_args(argv)
    pins = read_pins(args.pins.read_text(encoding="utf-8"))
    lines, ok = compare(pins, read_pins(args.before.read_text(encoding="utf-8")),
                        read_pins(args.after.read_text(encoding="utf-8")))
    print(f"Colab's pinned packages ({args.pins}) around the install of defectlib:")
    print("\n".join(lines))
    print(f"{len(pins)} pinned packages: " + ("none changed." if ok else "pip CHANGED some (see above)."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
