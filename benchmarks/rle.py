"""Benchmark: decode and re-encode the 638 real Severstal masks of ``severstal/test.csv``.

Goal: all 638 round trips in under 0.5 s (median of 5 runs). For scale, the same
run also times a naive pure-Python decoder (one pixel at a time) on 20 masks and
extrapolates it to all 638 by their number of pixels.

Run: ``python benchmarks/rle.py``. The reference data is looked up in
``../shared/data`` beside the repository, or in ``$DEFECTLIB_SHARED_DATA``; when
it is absent the script says so and exits with status 0.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd
from _common import argument_parser, require, shared_data, timed

from defectlib.rle import SEVERSTAL_SHAPE, rle_decode, rle_encode

GOAL_S = 0.5
RUNS = 5
NAIVE_SUBSET = 20


def naive_decode(rle: str, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """The textbook loop: set one pixel at a time (column-major, pixels numbered from 1)."""
    height, width = shape
    mask = np.zeros((height, width), np.uint8)
    values = [int(v) for v in rle.split()]
    for start, length in zip(values[0::2], values[1::2]):
        for pixel in range(start - 1, start - 1 + length):
            mask[pixel % height, pixel // height] = 1
    return mask


def round_trip_all(rles: list[str]) -> None:
    for rle in rles:
        if rle_encode(rle_decode(rle)) != rle:
            raise AssertionError(f"round trip changed a mask: {rle[:60]}...")


def main() -> int:
    argument_parser(__doc__).parse_args()  # no settings: --help only
    csv = require(shared_data() / "severstal" / "test.csv")
    rles = pd.read_csv(csv)["EncodedPixels"].tolist()
    print(f"{len(rles)} real masks from {csv}")

    round_trip_all(rles)  # checks every mask once (and warms up)
    median = statistics.median(timed(round_trip_all, rles)[0] for _ in range(RUNS))
    cpu = statistics.median(timed(round_trip_all, rles, clock=time.process_time)[0] for _ in range(RUNS))
    verdict = "meets" if median <= GOAL_S else "MISSES"
    print(f"defectlib.rle decode + encode of all {len(rles)} masks: {median:.3f} s "
          f"(median of {RUNS}; goal {GOAL_S} s: {verdict} it; CPU time {cpu:.3f} s, "
          "which a busy machine inflates less)")

    subset = rles[:: len(rles) // NAIVE_SUBSET][:NAIVE_SUBSET]  # spread over the file
    for rle in subset:
        if not np.array_equal(naive_decode(rle), rle_decode(rle)):
            raise AssertionError("the naive decoder disagrees with defectlib.rle")
    # CPU time for both sides of the ratio, so that other load on the machine cancels out.
    clock = time.process_time
    # The naive loop costs per pixel, so extrapolate by the number of mask pixels.
    pixels = lambda masks: sum(sum(map(int, r.split()[1::2])) for r in masks)  # noqa: E731
    naive = timed(lambda: [naive_decode(r) for r in subset], clock=clock)[0] * pixels(rles) / pixels(subset)
    fast = statistics.median(timed(lambda: [rle_decode(r) for r in rles], clock=clock)[0] for _ in range(RUNS))
    print(f"decode only, CPU time for {len(rles)} masks: naive per-pixel loop {naive:.2f} s "
          f"(extrapolated from {NAIVE_SUBSET}), defectlib.rle {fast:.3f} s: {naive / fast:.0f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
