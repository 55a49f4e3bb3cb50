"""Run settings come from the environment, in one place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from defectlib import config
from defectlib.config import seed_everything, settings

VARIABLES = ("DEFECTLIB_FAST", "DEFECTLIB_SEED", "DEFECTLIB_NEU_DIR", "DEFECTLIB_SEVERSTAL_DIR",
             "DEFECTLIB_DATA_HOME", "DEFECTLIB_OFFLINE")


@pytest.fixture
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env):
    clean_env.setattr(config, "_answers", lambda host, port: True)  # downloads work: full mode (tests/test_mode.py)
    s = settings()
    assert (s.fast, s.seed, s.neu_dir, s.severstal_dir, s.offline) == (False, 42, None, None, False)
    assert s.data_home == Path.home() / ".cache" / "defectlib"
    assert s.pick(full=50, fast=1) == 50


def test_every_variable_is_read(clean_env, tmp_path):
    values = {"DEFECTLIB_FAST": "yes", "DEFECTLIB_SEED": "7", "DEFECTLIB_NEU_DIR": str(tmp_path / "neu"),
              "DEFECTLIB_SEVERSTAL_DIR": str(tmp_path / "sev"), "DEFECTLIB_DATA_HOME": str(tmp_path / "home"),
              "DEFECTLIB_OFFLINE": "1"}
    for name, value in values.items():
        clean_env.setenv(name, value)
    s = settings()
    assert (s.fast, s.seed, s.offline) == (True, 7, True)
    assert (s.neu_dir, s.severstal_dir, s.data_home) == (tmp_path / "neu", tmp_path / "sev", tmp_path / "home")
    assert s.pick(full=50, fast=1) == 1
    assert "FAST" in str(s)


@pytest.mark.parametrize(("name", "value"), [("DEFECTLIB_FAST", "maybe"), ("DEFECTLIB_SEED", "4.5")])
def test_bad_values_name_the_variable(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        settings()


def test_seed_everything_makes_numpy_repeatable(clean_env):
    seed_everything(11)
    first = np.random.rand(3)
    seed_everything(11)
    assert np.array_equal(first, np.random.rand(3))


def test_banners_wrap_long_lines_but_never_break_a_path(capsys):
    from defectlib.config import banner

    path = "/home/student/.cache/defectlib/synthetic/severstal-800-seed0-with-a-long-name/train_images"
    banner(f"Using: the synthetic stand-in in {path}, made because no data folder was set and no download worked")
    out = capsys.readouterr().out
    assert path in out and max(len(line) for line in out.splitlines()) <= 78 + len(path)
