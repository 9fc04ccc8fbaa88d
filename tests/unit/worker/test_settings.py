"""Settings: one TOML file plus KAMADO_* variables, every bad field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings.model import load_settings, mask_url, masked_dump


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kamado.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KAMADO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_defaults_need_no_file_and_mean_the_embedded_broker() -> None:
    settings = load_settings(None)
    assert settings.embedded
    assert settings.encode.default_profile == "h264-auto"
    assert settings.broker.visibility_timeout > settings.encode.time_limit


def test_toml_values_are_read_and_environment_overrides_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[encode]\ndefault_profile = "h264-x264"\ntime_limit = 4000\nsoft_time_limit = 3000\n'
        "[broker]\nvisibility_timeout = 5000\n",
    )
    monkeypatch.setenv("KAMADO_ENCODE__DEFAULT_PROFILE", "h264-intel")
    monkeypatch.setenv("KAMADO_BROKER_URL", "redis://:s3cret@10.0.0.5:6379/0")
    settings = load_settings(path)
    assert settings.encode.default_profile == "h264-intel"
    assert settings.encode.time_limit == 4000
    assert settings.broker.visibility_timeout == 5000
    assert settings.broker_url is not None
    assert settings.broker_url.get_secret_value().endswith("@10.0.0.5:6379/0")


def test_kamado_config_variable_points_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[worker]\nqueues = ["encode.cpu"]\n')
    monkeypatch.setenv("KAMADO_CONFIG", str(path))
    assert load_settings(None).worker.queues == ["encode.cpu"]


def test_user_config_is_found_in_the_home_directory(tmp_path: Path) -> None:
    user = tmp_path / "home" / ".config" / "kamado" / "kamado.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[worker]\nconcurrency = 3\n")
    assert load_settings(None).worker.concurrency == 3


def test_a_missing_explicit_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: not found"):
        load_settings(tmp_path / "nope.toml")


def test_misspelt_key_is_rejected_with_its_dotted_name(tmp_path: Path) -> None:
    path = write(tmp_path, "[encode]\ntime_limt = 10\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.problems == [f"encode.time_limt: unknown key (in {path})"]
    assert info.value.exit_code == 2


def test_every_bad_field_is_reported_with_value_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, '[encode]\ntime_limit = "soon"\n[worker]\nconcurrency = 0\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = info.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("encode.time_limit = 'soon': ")
    assert "valid integer" in problems[0]
    assert problems[1].startswith("worker.concurrency = 0: ")


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[encode\n")
    with pytest.raises(ConfigError, match=r"kamado\.toml: .*line 1"):
        load_settings(path)


def test_visibility_timeout_must_exceed_the_hard_time_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "[broker]\nvisibility_timeout = 600\n")
    with pytest.raises(ConfigError, match=r"visibility_timeout \(600\) must exceed"):
        load_settings(path)


def test_soft_time_limit_must_be_below_the_hard_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[encode]\nsoft_time_limit = 100\ntime_limit = 100\n")
    with pytest.raises(ConfigError, match="soft_time_limit"):
        load_settings(path)


def test_a_broker_url_with_a_wrong_scheme_never_shows_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAMADO_BROKER_URL", "http://admin:hunter2@example:80")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert "hunter2" not in str(info.value)
    assert "unsupported scheme 'http'" in str(info.value)


def test_dump_masks_broker_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAMADO_BROKER_URL", "redis://kamado:hunter2@broker:6379/0")
    data = masked_dump(load_settings(None))
    assert data["broker_url"] == "redis://kamado:***@broker:6379/0"
    assert "hunter2" not in repr(data)


def test_mask_url_leaves_urls_without_credentials_alone() -> None:
    assert mask_url("redis://broker:6379/0") == "redis://broker:6379/0"
    assert mask_url("redis://:pw@broker:6379/0") == "redis://:***@broker:6379/0"


def test_user_profiles_are_validated_like_the_built_ins(tmp_path: Path) -> None:
    path = write(tmp_path, '[profiles.anime]\nbackends = ["vaapi", "x264"]\nquality = 99\n')
    with pytest.raises(ConfigError, match=r"profiles\.anime\.quality = 99"):
        load_settings(path)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("watchdog_silence = 2", "must be 0 (off) or at least 5 seconds"),
        ("watchdog_silence = -1", "greater than or equal to 0"),
        ("watchdog_silence = 7200", "less than or equal to 3600"),
        ('watchdog_action = "reboot"', "'restart' or 'exit'"),
    ],
)
def test_a_bad_watchdog_setting_is_one_error_naming_it(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = write(tmp_path, f"[worker]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"worker.{line.split()[0]} = ") and reason in problem, problem
    assert info.value.exit_code == 2


def test_the_watchdog_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).worker.watchdog_silence == 120
    off = load_settings(write(tmp_path, "[worker]\nwatchdog_silence = 0\n"))
    assert off.worker.watchdog_silence == 0
