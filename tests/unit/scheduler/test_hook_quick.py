"""The hook's quick path: its argument parser, the request it spools, its config cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.errors import HookInputError
from scheduler.hooks.config import cache_dir, hook_config
from scheduler.hooks.quick import HookArgs, parse_args
from scheduler.recorder_input import hook_request, validate_epgstation
from scheduler.recorders import hook_input
from scheduler.spool.durable import read_entry
from worker.errors import ConfigError


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["hook", "epgstation"], HookArgs("epgstation")),
        (
            ["hook", "epgstation", "--failed", "-c", "/k.toml", "--json"],
            HookArgs("epgstation", failed=True, config=Path("/k.toml"), as_json=True),
        ),
        (
            ["hook", "chinachu", "./rec/a b.m2ts", "{}", "--config=/k.toml"],
            HookArgs("chinachu", ("./rec/a b.m2ts", "{}"), config=Path("/k.toml")),
        ),
        (["hook", "edcb", "--json"], HookArgs("edcb", as_json=True)),
    ],
)
def test_the_quick_parser_takes_what_recorders_pass(argv: list[str], expected: HookArgs) -> None:
    assert parse_args(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["hook"],
        ["hook", "--help"],
        ["hook", "epgstation", "--help"],
        ["hook", "epgstation", "--wait"],
        ["hook", "edcb", "--failed"],  # not an option of this hook: typer says so
        ["hook", "chinachu", "only-one"],
        ["hook", "epgstation", "--config"],
        ["hook", "mirakurun"],
        ["status"],
    ],
)
def test_anything_else_goes_to_the_full_command_line(argv: list[str]) -> None:
    assert parse_args(argv) is None


def test_a_spooled_request_carries_only_the_recorders_variables_and_parses_again() -> None:
    env = {"RECPATH": "rec/a.ts", "NAME": "ニュース", "DROP_CNT": "4", "SECRET": "x",
           "STARTAT": "null", "PATH": "/usr/bin"}  # fmt: skip
    validate_epgstation(env)
    request = hook_request("epgstation", env=env, args=[], path="/srv/rec/a.ts", failed=True)
    assert request.variables == {"RECPATH": "rec/a.ts", "NAME": "ニュース", "DROP_CNT": "4",
                                 "STARTAT": "null"}  # fmt: skip
    entry = read_entry(Path("x.json"), request.to_json())
    assert entry.request == request and entry.submission is None
    parsed = hook_input(request)
    assert parsed.path == "/srv/rec/a.ts"
    assert parsed.failed
    assert parsed.recording.drop_count == 4 and parsed.recording.start is None


def test_a_variable_that_is_not_utf8_is_refused_by_name() -> None:
    env = {"RECPATH": "/rec/a.ts", "NAME": "\udc82\udca0"}  # cp932 bytes, as os.environ has them
    with pytest.raises(HookInputError, match="epgstation: NAME is not valid UTF-8"):
        hook_request("epgstation", env=env, args=[], path="/rec/a.ts")


def test_the_config_is_validated_once_and_again_after_each_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tmp_path / "kamado.toml"
    config.write_text(f'broker_url = "redis://h:6379/0"\nstate_dir = "{tmp_path}/s"\n')
    first = hook_config(config)
    assert (first.spool_dir, first.broker) == (tmp_path / "s" / "spool", True)
    (cached,) = cache_dir().glob("hook-config-*.json")
    assert str(tmp_path / "s" / "spool") in cached.read_text()
    assert hook_config(config) == first
    monkeypatch.setenv("KAMADO_SCHEDULER__SPOOL_DIR", str(tmp_path / "elsewhere"))
    assert hook_config(config).spool_dir == tmp_path / "elsewhere"
    monkeypatch.setenv("KAMADO_SCHEDULER__SPOOL_POLL", "-1")
    with pytest.raises(ConfigError, match=r"scheduler\.spool_poll"):
        hook_config(config)
    monkeypatch.delenv("KAMADO_SCHEDULER__SPOOL_POLL")
    config.write_text(f'state_dir = "{tmp_path}/t"\n')
    changed = hook_config(config)
    assert (changed.state_dir, changed.broker) == (tmp_path / "t", False)


def test_an_unwritable_cache_only_means_validating_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no directory can go there
    config = tmp_path / "kamado.toml"
    config.write_text(f'state_dir = "{tmp_path}/s"\n')
    assert hook_config(config).state_dir == tmp_path / "s"
    config.write_text("state_dir = 3\n")
    with pytest.raises(ConfigError, match="state_dir"):
        hook_config(config)
