"""The [flower], [metrics] and [notify] sections and how `kamado flower` decides to start."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from celery.utils.saferepr import saferepr

from worker.admin import flower, task_view
from worker.errors import ConfigError
from worker.jobs import Job
from worker.settings.admin import FlowerSettings, MetricsSettings, NotifySettings, is_loopback
from worker.settings.model import Settings, load_settings, masked_dump

ROOT = Path(__file__).resolve().parents[3]
BROKER = "redis://:pw@127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("KAMADO_", "FLOWER_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_the_example_file_is_valid_and_documents_every_admin_key() -> None:
    text = (ROOT / "deploy" / "admin.example.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    settings = Settings(**data)
    assert settings.flower.persistent
    for section, model in (
        ("flower", FlowerSettings),
        ("metrics", MetricsSettings),
        ("notify", NotifySettings),
    ):
        body = text.split(f"\n[{section}]\n", 1)[1].split("\n[", 1)[0]
        for key in model.model_fields:
            assert f"\n{key} =" in body or f"\n# {key} =" in body, f"{section}.{key} undocumented"


def test_basic_auth_comes_from_either_environment_spelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAMADO_FLOWER__BASIC_AUTH", "nested:pw")
    settings = load_settings(None)
    assert flower.credentials(settings, {}) == ["nested:pw"]
    assert flower.credentials(settings, {"KAMADO_FLOWER_BASIC_AUTH": "a:b:c,d:e"}) == [
        "a:b:c",
        "d:e",
    ]


def test_a_malformed_credential_is_an_error_naming_where_it_came_from() -> None:
    with pytest.raises(ConfigError, match="KAMADO_FLOWER_BASIC_AUTH: entry 2"):
        flower.credentials(Settings(), {"KAMADO_FLOWER_BASIC_AUTH": "a:b,nopassword"})
    with pytest.raises(ConfigError) as info:
        load_settings(write(Path(os.environ["HOME"]), '[flower]\nbasic_auth = "admin"\n'))
    assert "flower.basic_auth" in str(info.value)
    assert "admin" not in str(info.value).split("flower.basic_auth", 1)[1].split(":")[0]


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kamado.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_secrets_are_masked_in_config_check_output() -> None:
    settings = Settings(
        flower={"basic_auth": "admin:hunter2", "cookie_secret": "c00kie"},
        notify={"url": "https://hooks.example/x?token=t0ken", "secret": "s3cret"},
    )
    dumped = str(masked_dump(settings))
    for secret in ("hunter2", "c00kie", "t0ken", "s3cret"):
        assert secret not in dumped


def test_flower_refuses_to_start_without_credentials_on_a_configured_broker() -> None:
    with pytest.raises(ConfigError, match="refusing to start without authentication"):
        flower.plan(Settings(broker_url=BROKER), environ={})


def test_one_box_flower_needs_credentials_unless_it_binds_loopback(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"address 0\.0\.0\.0"):
        flower.plan(settings, address="0.0.0.0", environ={})
    chosen = flower.plan(settings, address="::1", environ={})
    assert chosen.unauthenticated
    assert chosen.broker_url == f"redis+socket://{tmp_path / 'broker' / 'valkey.sock'}"


def test_flower_options_carry_auth_buckets_persistence_and_the_task_formatter(
    tmp_path: Path,
) -> None:
    settings = Settings(
        broker_url=BROKER,
        state_dir=tmp_path,
        flower={"basic_auth": "admin:pw", "persistent": True, "port": 5600},
    )
    chosen = flower.plan(settings, address="0.0.0.0", environ={})
    options = chosen.options
    assert not chosen.unauthenticated
    assert options["basic_auth"] == ["admin:pw"]
    assert options["address"] == "0.0.0.0" and options["port"] == 5600
    assert options["db"] == str(tmp_path / "flower" / "flower.db")
    assert options["task_runtime_metric_buckets"][-1] == float("inf")
    assert 28800.0 in options["task_runtime_metric_buckets"]
    assert options["format_task"] is flower.format_task
    assert options["conf"] == os.devnull


def test_flower_watches_with_the_workers_transport_options() -> None:
    settings = Settings(broker_url=BROKER, broker={"visibility_timeout": 50_000})
    app = flower.flower_app(settings, BROKER)
    try:
        options = app.conf.broker_transport_options
        assert options["visibility_timeout"] == 50_000
        assert options["priority_steps"] == list(range(10))
    finally:
        app.close()


@pytest.mark.parametrize(
    "name",
    ["ニュース.ts", 'it\'s "quoted".ts', "back\\slash.ts", "a, b: {c}.m2ts"],
)
def test_the_tasks_page_shows_job_file_and_profile_for_any_file_name(name: str) -> None:
    job = Job.create(f"/srv/recorded/{name}", "h264-auto")
    args = saferepr([job.model_dump(mode="json")], 1024)  # what Celery puts in events
    assert task_view.describe_args(args) == f"{name} · h264-auto · job {job.id}"


def test_a_truncated_args_repr_is_left_alone() -> None:
    assert task_view.describe_args("[{'schema_version': 1, 'id': 'abc', 'sou...") is None


def test_loopback_addresses_are_recognised() -> None:
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(a) for a in ("0.0.0.0", "", "192.168.1.10", "::", "example"))


def test_bad_admin_values_are_rejected_with_the_field() -> None:
    with pytest.raises(ConfigError, match=r"notify\.url"):
        load_settings(write(Path(os.environ["HOME"]), '[notify]\nurl = "ftp://x"\n'))
    with pytest.raises(ConfigError, match="task_runtime_metric_buckets"):
        load_settings(
            write(Path(os.environ["HOME"]), "[flower]\ntask_runtime_metric_buckets = [60, 30]\n")
        )
    with pytest.raises(ConfigError, match="certfile and keyfile"):
        load_settings(write(Path(os.environ["HOME"]), '[flower]\ncertfile = "/x.crt"\n'))


def test_flower_variables_that_would_override_kamado_config_are_refused() -> None:
    settings = Settings(broker_url=BROKER, flower={"basic_auth": "a:b"})
    with pytest.raises(ConfigError, match="unset FLOWER_ADDRESS, FLOWER_UNAUTHENTICATED_API"):
        flower.plan(
            settings, environ={"FLOWER_UNAUTHENTICATED_API": "true", "FLOWER_ADDRESS": "0.0.0.0"}
        )
