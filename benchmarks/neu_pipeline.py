"""One epoch of the course's NEU input pipeline against the seed's, measured in the same run.

Seed: ``keras.utils.image_dataset_from_directory`` at 255x255 RGB, decoding every
file again each epoch. Course: ``defectlib.neu.neu_datasets`` at the native 200x200
grayscale, decoded once into memory. Run: ``python benchmarks/neu_pipeline.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import argument_parser, machine_load, require, shared_data, timed  # noqa: E402


def one_epoch(dataset) -> int:
    return sum(int(x.shape[0]) for x, _ in dataset)


def main() -> None:
    argument_parser(__doc__).parse_args()  # no settings: --help only

    import keras

    from defectlib.neu import find_neu, neu_datasets

    root = require(shared_data() / "NEU-DET")
    print(machine_load())
    seed_build, seed_ds = timed(keras.utils.image_dataset_from_directory, root / "train" / "images",
                                image_size=(255, 255), batch_size=32, seed=42, verbose=False)
    seed_epochs = [timed(one_epoch, seed_ds)[0] for _ in range(2)]

    data = find_neu(root, max_per_class=None)
    build, (train, _) = timed(neu_datasets, data, batch_size=32)
    course_epochs = [timed(one_epoch, train)[0] for _ in range(2)]

    print(f"{'pipeline':<46}{'build s':>9}{'epoch 1 s':>11}{'epoch 2 s':>11}")
    print(f"{'seed: image_dataset_from_directory 255x255 RGB':<46}{seed_build:>9.2f}"
          f"{seed_epochs[0]:>11.2f}{seed_epochs[1]:>11.2f}")
    print(f"{'course: neu_datasets 200x200 gray, in memory':<46}{build:>9.2f}"
          f"{course_epochs[0]:>11.2f}{course_epochs[1]:>11.2f}")
    first = (seed_build + seed_epochs[0]) / (build + course_epochs[0])
    print(f"ratio seed/course, first epoch including setup: {first:.1f}x")
    print(f"ratio seed/course, a later epoch: {seed_epochs[1] / course_epochs[1]:.1f}x")


if __name__ == "__main__":
    main()
