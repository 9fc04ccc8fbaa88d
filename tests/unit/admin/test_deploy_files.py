"""The deployment files say what they must: compose services, Redis durability, units, dashboard."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.admin.metrics import snapshot_families
from worker.admin.metrics_read import Snapshot
from worker.celery_app import celery_config
from worker.settings.model import Settings

ROOT = Path(__file__).resolve().parents[3]
UNIT_DIR = ROOT / "deploy" / "systemd"
ROLES = ["kamado-scheduler", "kamado-worker", "kamado-host-agent", "kamado-guest-agent"]
ROLES += ["kamado-flower"]
GPU_ROLES = {"kamado-worker", "kamado-guest-agent"}
FLOWER_METRICS = {
    "flower_events_total",
    "flower_task_runtime_seconds_bucket",
    "flower_worker_online",
    "flower_worker_number_of_currently_executing_tasks",
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def unit(name: str, part: str = "Service") -> dict[str, list[str]]:
    """A unit's keys in one section ([Service] unless said), each with every value given."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    values: dict[str, list[str]] = {}
    section = ""
    for line in (UNIT_DIR / f"{name}.service").read_text("utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == part:
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_compose_runs_redis_flower_scheduler_and_a_software_worker() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "flower", "scheduler", "worker"}
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--appendfsync everysec" in redis
    assert "--maxmemory-policy noeviction" in redis and "--requirepass" in redis
    assert "ports" not in services["redis"]  # only the compose network reaches Redis
    for name in ("flower", "scheduler", "worker"):
        service = services[name]
        env = service["environment"]
        assert env["KAMADO_CONFIG"] == "/etc/kamado/kamado.toml"
        assert env["KAMADO_BROKER_URL"].startswith("redis://default:${KAMADO_REDIS_PASSWORD")
        assert "./kamado.toml:/etc/kamado/kamado.toml:ro" in service["volumes"]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "devices" not in service


def test_compose_shares_recordings_and_outputs_at_the_same_paths() -> None:
    services = compose()["services"]
    for name in ("scheduler", "worker"):
        mounts = services[name]["volumes"]
        assert "${KAMADO_RECORDINGS:-./recordings}:/recordings" in mounts
        assert "${KAMADO_OUTPUTS:-./encoded}:/encoded" in mounts


def test_compose_flower_needs_credentials_and_publishes_on_loopback() -> None:
    flower = compose()["services"]["flower"]
    assert flower["environment"]["KAMADO_FLOWER_BASIC_AUTH"].startswith(
        "${KAMADO_FLOWER_BASIC_AUTH:?"
    )
    assert flower["ports"] == ["${KAMADO_FLOWER_PUBLISH:-127.0.0.1:5555}:5555"]


def test_compose_worker_requeues_on_stop_within_its_grace_period() -> None:
    worker = compose()["services"]["worker"]
    assert worker["environment"]["REMAP_SIGTERM"] == "SIGQUIT"
    assert json.loads(worker["environment"]["KAMADO_WORKER__BACKENDS"]) == ["x264"]
    grace = int(worker["stop_grace_period"].removesuffix("s"))
    soft = celery_config(Settings(), "redis://x")["worker_soft_shutdown_timeout"]
    assert grace > soft + 30


def test_compose_carries_a_commented_gpu_worker_with_dev_dri() -> None:
    text = (ROOT / "docker-compose.yml").read_text("utf-8")
    # Uncommenting the block, as an admin would, gives a valid file with the GPU service.
    lines = [
        "  " + line[4:] if re.match(r"^  # (worker-gpu|  )", line) else line
        for line in text.splitlines()
    ]
    services = yaml.safe_load("\n".join(lines))["services"]
    gpu = services["worker-gpu"]
    assert gpu["devices"] == ["/dev/dri:/dev/dri"]
    assert gpu["command"] == ["guest", "run"]
    assert gpu["environment"]["REMAP_SIGTERM"] == "SIGQUIT"
    assert gpu["environment"]["KAMADO_CONFIG"] == "/etc/kamado/kamado.toml"


def test_the_dockerfile_installs_ffmpeg_and_runs_kamado_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text("utf-8")
    assert "ffmpeg" in text and "USER kamado" in text
    assert re.search(r'ENTRYPOINT \["/usr/bin/tini", "--", "kamado"\]', text)


def test_redis_config_is_durable_never_evicts_and_grants_channels() -> None:
    lines = [
        line.split()
        for line in (ROOT / "deploy" / "redis" / "kamado.conf").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    settings = {words[0]: words[1:] for words in lines if words[0] != "user"}
    assert settings["appendonly"] == ["yes"] and settings["appendfsync"] == ["everysec"]
    assert settings["maxmemory-policy"] == ["noeviction"]
    assert "127.0.0.1" in settings["bind"]
    users = {words[1]: words[2:] for words in lines if words[0] == "user"}
    assert users["default"] == ["off"]
    assert "&*" in users["kamado"] and "-flushall" in users["kamado"]


@pytest.mark.parametrize("role", ROLES)
def test_each_unit_runs_hardened_as_the_kamado_user_and_restarts(role: str) -> None:
    values = unit(role)
    assert values["User"] == ["kamado"]
    assert values["ExecStart"][0].startswith("/opt/kamado/venv/bin/kamado ")
    for key, expected in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
    }.items():
        assert values[key] == [expected], key
    # 2 is a configuration error; the encoding roles also stop on 3 (no backend proven).
    prevent = "2 3" if role in GPU_ROLES else "2"
    assert values["RestartPreventExitStatus"] == [prevent]
    if role in GPU_ROLES:
        assert values["DevicePolicy"] == ["closed"]
        assert values["DeviceAllow"] == ["char-drm rw"]
        assert "PrivateDevices" not in values
    elif role == "kamado-host-agent":
        # PrivateDevices=yes would hide /dev/kvm and /dev/vfio from the preflight.
        assert values["DevicePolicy"] == ["closed"]
        assert "PrivateDevices" not in values and "DeviceAllow" not in values
    else:
        assert values["PrivateDevices"] == ["yes"]
        assert "DeviceAllow" not in values


@pytest.mark.parametrize("role", ROLES)
def test_units_leave_the_state_dir_to_the_config_the_hooks_read(role: str) -> None:
    values = unit(role)
    # A KAMADO_STATE_DIR here would override the TOML's state_dir for the service but
    # not for the hooks, and split the spool in two.
    assert not any(e.startswith("KAMADO_STATE_DIR=") for e in values.get("Environment", []))
    assert values["Environment"].count("KAMADO_CONFIG=/etc/kamado/kamado.toml") == 1
    documented = unit(role, "Unit")["Documentation"]
    assert documented == ["file:///opt/kamado/src/docs/deploy.md"], "where the checkout lives"


@pytest.mark.parametrize("role", ["kamado-scheduler", "kamado-flower"])
def test_recorder_units_keep_the_shared_spool_group_writable(role: str) -> None:
    # systemd re-applies StateDirectoryMode at every start: 0750 would lock the
    # recorder's user out of the spool that setup recorder made 2770.
    values = unit(role)
    assert values["StateDirectoryMode"] == ["2770"]
    assert values["UMask"] == ["0007"]


def test_the_guest_agent_waits_for_udev_settle_by_pulling_it_in() -> None:
    values = unit("kamado-guest-agent", "Unit")
    assert "systemd-udev-settle.service" in values["Wants"]
    assert "systemd-udev-settle.service" in values["After"]


def test_every_shipped_config_names_the_state_dir_the_units_create() -> None:
    for config in ("kamado.example.toml", "guest/kamado.guest.toml"):
        text = (ROOT / "deploy" / config).read_text("utf-8")
        assert re.search(r'^state_dir = "/var/lib/kamado"$', text, re.MULTILINE), config


@pytest.mark.parametrize("role", sorted(GPU_ROLES))
def test_worker_units_requeue_on_stop_instead_of_being_killed(role: str) -> None:
    values = unit(role)
    assert "REMAP_SIGTERM=SIGQUIT" in values["Environment"]
    assert values["KillMode"] == ["mixed"]
    soft = celery_config(Settings(), "redis://x")["worker_soft_shutdown_timeout"]
    assert int(values["TimeoutStopSec"][0]) > soft + 30


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "kamado.json").read_text("utf-8"))
    ours = {family.name for family in snapshot_families(Snapshot())}
    known = ours | {f"{name}_total" for name in ours} | FLOWER_METRICS | {"kamado_up"}
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            used |= set(re.findall(r"\b((?:kamado|flower)_[a-z_]+)\b", target["expr"]))
    assert used, "the dashboard queries nothing"
    assert used <= known, used - known
    for needed in ("kamado_jobs", "kamado_queue_messages", "kamado_encode_fps",
                   "kamado_encode_realtime_factor", "kamado_attempt_failures_total",
                   "kamado_vm_state", "kamado_spool_submissions",
                   "flower_task_runtime_seconds_bucket"):  # fmt: skip
        assert needed in used, needed


def test_every_shipped_broker_url_names_its_redis_user() -> None:
    # deploy/redis/kamado.conf turns the default user off: a URL with a password but no
    # user (`broker_url = "redis://:PASSWORD@..."`) is refused. Prose may still name it.
    shipped = [*ROOT.glob("deploy/**/*"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]
    shipped.append(ROOT / "docker-compose.yml")
    bad = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in shipped
        if path.is_file()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"(?i)broker_url\W{0,3}\s*[\"']?rediss?://:", line)
    ]
    assert bad == []
