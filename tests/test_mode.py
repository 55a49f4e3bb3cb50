"""The course's rule for missing data or weights: full mode is the real lesson, otherwise a demo says why."""

from __future__ import annotations

import json

import pytest

from defectlib import config
from defectlib.config import kaggle_credentials, settings, start_lesson
from defectlib.config import pretrained


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No DEFECTLIB_* or Kaggle settings, no credentials file, and a network that answers."""
    for name in ("DEFECTLIB_FAST", "DEFECTLIB_NEU_DIR", "DEFECTLIB_SEVERSTAL_DIR", "DEFECTLIB_OFFLINE",
                 "DEFECTLIB_WEIGHTS_DIR",
                 "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    monkeypatch.setattr(config, "_answers", lambda host, port: True)
    return monkeypatch


def test_unset_with_downloads_is_full(env):
    s = settings()
    assert (s.fast, s.demo, s.demo_reason) == (False, False, "")
    assert str(s).startswith("mode: full\n")


@pytest.mark.parametrize("fast", ["", "auto", " AUTO "])
def test_unset_offline_without_data_is_a_demo_that_says_why(env, fast):
    env.setenv("DEFECTLIB_FAST", fast)
    env.setenv("DEFECTLIB_OFFLINE", "1")
    s = settings()
    assert s.fast and s.demo and s.pick(full=30, fast=2) == 2
    assert "DEFECTLIB_OFFLINE=1" in s.demo_reason
    text = str(s)
    assert "DEMO RUN" in text and "NOT results" in text and "DEFECTLIB_FAST=0" in text
    assert max(len(line) for line in text.splitlines()[:9]) <= 78


def test_no_answer_from_the_download_host_is_a_demo(env):
    env.setattr(config, "_answers", lambda host, port: False)
    assert f"{config.KAGGLE[0]} does not answer" in settings().demo_reason


def test_each_need_asks_the_host_its_download_comes_from(env):
    asked = []
    env.setattr(config, "_answers", lambda host, port: asked.append(host) or host != "storage.googleapis.com")
    assert settings(needs=["neu", "preset"]).demo is False
    assert asked == ["www.kaggle.com", "www.kaggle.com"]
    reason = settings(needs=["neu", "imagenet"]).demo_reason
    assert reason == ("cannot get the ImageNet weights of keras.applications: downloads are not possible "
                      "(storage.googleapis.com does not answer)")


def test_a_data_folder_offline_is_full(env, tmp_path):
    env.setenv("DEFECTLIB_OFFLINE", "1")
    env.setenv("DEFECTLIB_NEU_DIR", str(tmp_path))
    assert not settings().fast


@pytest.mark.parametrize(("value", "fast"), [("0", False), ("1", True), ("no", False), ("yes", True)])
def test_an_explicit_value_wins_and_is_never_a_demo(env, value, fast):
    env.setenv("DEFECTLIB_OFFLINE", "1")
    env.setenv("DEFECTLIB_FAST", value)
    s = settings()
    assert (s.fast, s.demo) == (fast, False)


def test_needs_are_checked_one_by_one(env, tmp_path):
    env.setenv("DEFECTLIB_OFFLINE", "1")
    env.setenv("DEFECTLIB_NEU_DIR", str(tmp_path))
    assert settings(needs=["neu"]).demo is False
    reason = settings(needs=["neu", "imagenet"]).demo_reason
    assert reason == "cannot get the ImageNet weights of keras.applications: downloads are off (DEFECTLIB_OFFLINE=1)"
    with pytest.raises(ValueError, match="weights"):
        settings(needs=["weights"])


def test_severstal_downloads_need_kaggle_credentials(env, tmp_path):
    reason = settings(needs=["severstal"]).demo_reason
    assert "Kaggle credentials" in reason and "DEFECTLIB_SEVERSTAL_DIR" in reason
    (tmp_path / "kaggle").mkdir()
    (tmp_path / "kaggle" / "kaggle.json").write_text(json.dumps({"username": "ada", "key": "k"}))
    assert kaggle_credentials() and not settings(needs=["severstal"]).demo


def test_kaggle_credentials_from_the_environment(env):
    assert not kaggle_credentials()
    env.setenv("KAGGLE_USERNAME", "ada")
    assert not kaggle_credentials()
    env.setenv("KAGGLE_KEY", "k")
    assert kaggle_credentials()


def test_weights_say_which_they_are_in_every_mode(env, capsys):
    def build(weights):
        if weights is not None:
            raise OSError("no route to host")
        return "random model"

    env.setenv("DEFECTLIB_OFFLINE", "0")
    assert pretrained(lambda w: "real model", "a toy") == ("real model", True)
    assert "Pretrained weights: a toy" in capsys.readouterr().out
    env.setattr(config, "_answers", lambda host, port: False)  # a demo: no downloads possible
    start_lesson(needs=["imagenet"])
    assert pretrained(build, "a toy") == ("random model", False)
    out = capsys.readouterr().out
    assert "DEMO RUN" in out and "RANDOM weights" in out and "no route to host" in out
    env.setenv("DEFECTLIB_FAST", "0")
    start_lesson(needs=["imagenet"])
    with pytest.raises(RuntimeError, match="DEFECTLIB_FAST=1"):
        pretrained(build, "a toy")
