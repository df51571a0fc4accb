"""The watch settings: environment, flags over environment, and bad values refused."""

from __future__ import annotations

import pytest

from service.cli.main import _settings, build_parser
from service.errors import OpsgateError
from service.settings import Settings, from_env


def test_watch_is_off_by_default_and_polls_every_second() -> None:
    settings = from_env({})
    assert (settings.watch, settings.watch_interval_s) == (False, 1.0)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False)]
)
def test_opsgate_watch_reads_on_and_off_words(value: str, expected: bool) -> None:
    assert from_env({"OPSGATE_WATCH": value}).watch is expected


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("OPSGATE_WATCH", "maybe", "OPSGATE_WATCH='maybe' is invalid: expected 1/true/yes/on or 0/false/no/off"),
        ("OPSGATE_WATCH_INTERVAL_S", "0", "OPSGATE_WATCH_INTERVAL_S='0' is invalid: must be greater than 0"),
    ],
)
def test_a_bad_watch_variable_is_refused_by_name(variable: str, value: str, reason: str) -> None:
    with pytest.raises(OpsgateError) as caught:
        from_env({variable: value})
    assert caught.value.message == reason


def test_serve_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGATE_WATCH_INTERVAL_S", "5")
    settings: Settings = _settings(build_parser().parse_args(["serve", "--watch", "--watch-interval", "0.5"]))
    assert (settings.watch, settings.watch_interval_s) == (True, 0.5)


def test_a_watch_interval_that_is_not_positive_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["serve", "--watch-interval", "-1"])
    assert caught.value.code == 2
    assert "expected a number of seconds greater than 0, got '-1'" in capsys.readouterr().err
