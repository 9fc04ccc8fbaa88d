"""`kamado config check` refuses what validates but fails at run time, and reads kamado.env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.worker.test_cli import kamado

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_the_example_configs_values_are_refused_each_by_field_with_its_fix(
    tmp_path: Path,
) -> None:
    example = (DEPLOY / "kamado.example.toml").read_text(encoding="utf-8")
    assert '"/etc/kamado/id_ed25519"' in example  # moved under tmp_path: surely missing
    config = tmp_path / "kamado.toml"
    config.write_text(example.replace("/etc/kamado/", f"{tmp_path}/etc/"), encoding="utf-8")
    result = kamado("config", "check", str(config), home=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    expected = {
        "error: flower.basic_auth: still the example's placeholder secret; fix: set a "
        "user:password of your own",
        "error: staging.locations.recorder.host: 'recorder.lan' is a host name from the examples",
        f"error: staging.locations.recorder.key_file: {tmp_path}/etc/id_ed25519: no such file; "
        "fix: `kamado setup location recorder`",
    }
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, result.stderr)
    assert "change-me" not in result.stdout + result.stderr  # the secret itself never shown


def test_a_path_map_target_naming_no_location_is_an_error_beside_locations_else_a_warning(
    tmp_path: Path,
) -> None:
    mapping = '[[scheduler.path_map]]\nrecorder = "/rec"\ntarget = "sftp://recordr/recorded"\n'
    recorder_box = tmp_path / "recorder.toml"
    recorder_box.write_text(mapping, encoding="utf-8")
    result = kamado("config", "check", str(recorder_box), "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["field"], problem["severity"]) == ("scheduler.path_map[0].target", "warning")
    assert "[staging.locations.recordr]" in problem["fix"]
    key, hosts = tmp_path / "id", tmp_path / "known_hosts"
    key.write_text("key\n")
    hosts.write_text("h ssh-ed25519 AAAA\n")
    one_box = tmp_path / "one.toml"
    one_box.write_text(
        mapping + f'[staging.locations.recorder]\nkind = "sftp"\nhost = "10.0.0.2"\n'
        f'user = "kamado"\nkey_file = "{key}"\nknown_hosts = "{hosts}"\n',
        encoding="utf-8",
    )
    result = kamado("config", "check", str(one_box), home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: scheduler.path_map[0].target: names location 'recordr', which "
        "[staging.locations] does not define (it defines recorder); fix: define "
        "[staging.locations.recordr] or correct the target"
    ), result.stderr


def test_config_check_reads_the_units_env_file_and_names_its_mistakes(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text("[worker]\nconcurrency = 2\n", encoding="utf-8")
    env_file = tmp_path / "kamado.env"
    env_file.write_text(
        "# the units' EnvironmentFile\nKAMADO_BROKER_URL='redis://kamado:s3cr3t-x@10.0.0.9:6379/0'\n"
        "KAMADO_FLOWER_BASIC_AUTH=admin:fl0wer-pw\n",
        encoding="utf-8",
    )
    args = ("config", "check", str(config), "--env-file", str(env_file), "--json")
    result = kamado(*args, home=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["settings"]["broker_url"] == "redis://kamado:***@10.0.0.9:6379/0"
    assert data["problems"] == []
    assert "s3cr3t-x" not in result.stdout and "fl0wer-pw" not in result.stdout
    env_file.write_text(
        "KAMADO_BROKER_URL=redis://kamado:change-me@broker.lan:6379/0\n"
        "KAMADO_SCHEDULER_SPOOL_DIR=/var/lib/kamado/spool\n",
        encoding="utf-8",
    )
    result = kamado(*args[:-1], home=tmp_path)
    assert result.returncode == 2
    assert "error: broker_url: still the example's placeholder secret" in result.stderr
    assert f"error: KAMADO_SCHEDULER_SPOOL_DIR (in {env_file}): names no setting" in result.stderr
    assert "change-me" not in result.stdout + result.stderr


def test_config_check_masks_query_and_socket_passwords_in_text_and_json(tmp_path: Path) -> None:
    for url in (
        "redis://10.0.0.9/0?password=hunter2x",
        "rediss://10.0.0.9:6380/0?db=0&password=hunter2x",
        "redis+socket:///run/redis/redis.sock?password=hunter2x&db=0",
    ):
        config = tmp_path / "kamado.toml"
        config.write_text(f'broker_url = "{url}"\n', encoding="utf-8")
        for extra in ((), ("--json",)):
            result = kamado("config", "check", str(config), *extra, home=tmp_path)
            assert result.returncode == 0, result.stderr
            assert "hunter2x" not in result.stdout + result.stderr
            assert "password=***" in result.stdout
    config.write_text('broker_url = "redis//:hunter2x@10.0.0.9"\n', encoding="utf-8")
    result = kamado("config", "check", str(config), home=tmp_path)
    assert result.returncode == 2
    assert "broker_url = '***': unsupported scheme (none: the value is not a URL)" in (
        result.stderr
    )
    assert "hunter2x" not in result.stdout + result.stderr
