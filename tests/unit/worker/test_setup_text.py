"""The text `kamado setup` writes and prints: env files, kamado.toml, Redis config, path maps."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.setup_recorder import (
    RecorderOptions,
    chinachu_script,
    hook_lines,
    redis_conf,
    with_broker_url,
)
from worker.settings.model import Settings
from worker.setup.envfile import parse_env, with_value
from worker.setup.errors import SetupError
from worker.setup.location import LocationOptions, pastes, path_target
from worker.setup.units import SHIPPED_BINARY

ROOT = Path(__file__).resolve().parents[3]
KEYS = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True)
VALUES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\n\r\"'"), max_size=40
).map(str.strip)
SEGMENT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))


def options(state_dir: str = "/var/lib/kamado") -> RecorderOptions:
    return RecorderOptions(
        recorder="epgstation",
        recorder_user="",
        broker_host="192.168.1.10",
        broker_port=6379,
        listen="192.168.1.10",
        state_dir=state_dir,
        binary="/opt/kamado/venv/bin/kamado",
        redis_template=ROOT / "deploy/redis/kamado.conf",
    )


@given(st.dictionaries(KEYS, VALUES, max_size=6), KEYS, VALUES)
def test_setting_one_env_key_keeps_every_other_line_and_reads_back(
    existing: dict[str, str], key: str, value: str
) -> None:
    text = "# kept comment\n" + "".join(f"{k}={v}\n" for k, v in existing.items())
    updated = with_value(text, key, value)
    assert parse_env(updated) == {**existing, key: value}
    assert updated.startswith("# kept comment\n")
    assert with_value(updated, key, value) == updated


@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), VALUES, max_size=4))
def test_broker_url_goes_before_the_first_table_and_keeps_every_other_key(
    sections: dict[str, str],
) -> None:
    url = "redis://kamado:0123abcd@192.168.1.10:6379/0"
    body = "# my notes\n" + "".join(
        f"[{name}]\nkey = {json.dumps(v, ensure_ascii=False)}\n" for name, v in sections.items()
    )
    written = with_broker_url(body, url, options())
    data = tomllib.loads(written)
    assert data["broker_url"] == url
    assert {k: v for k, v in data.items() if k != "broker_url"} == {
        name: {"key": v} for name, v in sections.items()
    }
    again = with_broker_url(written, url.replace("0123abcd", "ffff"), options())
    assert tomllib.loads(again)["broker_url"].endswith("ffff@192.168.1.10:6379/0")
    assert sum(x.startswith("broker_url =") for x in again.splitlines()) == 1


def test_a_new_recorder_config_is_valid_and_names_the_state_dir() -> None:
    url = "redis://kamado:0123abcd@192.168.1.10:6379/0"
    data = tomllib.loads(with_broker_url(None, url, options("/srv/kamado")))
    settings = Settings(**data)
    assert settings.state_dir == Path("/srv/kamado")
    assert settings.broker_url is not None and settings.broker_url.get_secret_value() == url


def test_the_redis_config_gets_both_passwords_the_bind_and_the_port() -> None:
    template = (ROOT / "deploy/redis/kamado.conf").read_text()
    text = redis_conf(template, "p" * 48, "a" * 48, options())
    lines = [x for x in text.splitlines() if not x.startswith("#")]
    assert "bind 127.0.0.1 -::1 192.168.1.10" in lines
    assert any(x.startswith("user kamado on >" + "p" * 48 + " ") for x in lines)
    assert any(x.startswith("user admin on >" + "a" * 48 + " ") for x in lines)
    assert not [x for x in lines if "CHANGE-ME" in x]


@given(st.lists(SEGMENT, max_size=3), st.lists(SEGMENT, max_size=3))
def test_the_path_map_target_reaches_the_recorder_path_through_the_location(
    root_parts: list[str], rest: list[str]
) -> None:
    root = "/" + "/".join(root_parts)
    recorder = "/" + "/".join([*root_parts, *rest])
    opts = LocationOptions(
        name="recorder", host="r", port=22, user="kamado", remote_dir=root,
        recorder_path=recorder, key_file="/k", known_hosts="/kh", writable=True,
    )  # fmt: skip
    target = path_target(opts)
    assert target == "sftp://recorder" + "".join(f"/{p}" for p in rest)
    printed = {p.where: p.text for p in pastes(opts, "ssh-ed25519 AAAA")}
    path_map = tomllib.loads(printed["/etc/kamado/kamado.toml on the recorder"])
    assert path_map["scheduler"]["path_map"] == [{"recorder": recorder, "target": target}]
    location = tomllib.loads(printed["/etc/kamado/kamado.toml on this worker"])
    Settings(**location)  # the printed table is a valid location


def test_a_recorder_path_outside_the_remote_dir_is_refused() -> None:
    opts = LocationOptions(
        name="recorder", host="r", port=22, user="kamado", remote_dir="/srv/recorded",
        recorder_path="/home/epgstation/recorded", key_file="/k", known_hosts="/kh",
        writable=True,
    )  # fmt: skip
    with pytest.raises(SetupError, match="not under --remote-dir"):
        path_target(opts)


@pytest.mark.parametrize("recorder", ["epgstation", "edcb"])
def test_the_shipped_recorder_snippets_are_what_setup_prints_for_the_installed_venv(
    recorder: str,
) -> None:
    printed = "".join(paste.text for paste in hook_lines(recorder, SHIPPED_BINARY))
    shipped = {"epgstation": "epgstation-config.yml", "edcb": "PostRecEnd.sh"}[recorder]
    text = (ROOT / "deploy/recorders" / shipped).read_text()
    commands = [x for x in printed.splitlines() if "hook" in x or "cmd:" in x]
    assert commands and all(line in text.splitlines() for line in commands), commands
    if recorder == "epgstation":  # the hooks and both encode presets, ready to paste
        assert sum("epgstation encode --profile" in x for x in commands) == 2


def test_the_shipped_epgstation_presets_are_yaml_epgstation_can_split_on_spaces() -> None:
    import yaml

    text = (ROOT / "deploy/recorders/epgstation-config.yml").read_text()
    config = yaml.safe_load(text)
    assert config["recordingFinishCommand"].split(" ")[1:3] == ["hook", "epgstation"]
    for preset in config["encode"]:
        argv = preset["cmd"].split(" ")  # EPGStation's split: no argument may hold a space
        assert argv[0] == SHIPPED_BINARY and argv[1:3] == ["epgstation", "encode"]
        assert all(arg and '"' not in arg and "'" not in arg for arg in argv), argv
        assert preset["suffix"] == ".mp4" and preset["rate"] > 0


def test_the_shipped_chinachu_script_runs_what_setup_installs() -> None:
    def execs(text: str) -> list[str]:
        return [x for x in text.splitlines() if x.startswith("exec ")]

    shipped = (ROOT / "deploy/recorders/chinachu-recorded.sh").read_text()
    assert execs(shipped) == execs(chinachu_script(SHIPPED_BINARY))
    config = (ROOT / "deploy/recorders/chinachu-config.json").read_text()
    assert hook_lines("chinachu", SHIPPED_BINARY)[0].text.strip() in config
