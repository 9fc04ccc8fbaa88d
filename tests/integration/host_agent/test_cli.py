"""`kamado host ...` through the real CLI root, on libvirt's test driver and fixture hosts."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from host_agent.lifecycle import Hypervisor, VmState
from tests.integration.host_agent.conftest import TEST_URI, validate_xml, wait_for
from tests.support.redis_proc import RedisProcess
from tests.support.workers import environ_without_kamado, worker_env
from tests.unit.host_agent.sysfs_fixtures import (
    HASWELL_CMDLINE_OFF,
    HASWELL_DEVICES,
    USB_TUNER,
    bind,
    build_host,
)
from worker import process
from worker.broker.heartbeat import HostHeartbeat
from worker.broker.keys import host_key, worker_key
from worker.cli.main import build_app

pytestmark = pytest.mark.integration

RECIPE = Path(__file__).parents[3] / "deploy" / "host.example.toml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def config(tmp_path: Path, vm_name: str) -> Path:
    """The example recipe pointed at the test driver under a fresh VM name."""
    text = RECIPE.read_text()
    text = text.replace('libvirt_uri = "qemu:///system"', f'libvirt_uri = "{TEST_URI}"')
    text = text.replace('name = "kamado-gpu"', f'name = "{vm_name}"')
    path = tmp_path / "kamado.toml"
    path.write_text(text)
    return path


def test_xml_prints_a_domain_libvirt_accepts(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["host", "xml", "--config", str(RECIPE)])
    assert result.exit_code == 0, result.output
    assert "<name>kamado-gpu</name>" in result.stdout
    validate_xml(result.stdout, tmp_path)


def test_preflight_json_on_a_ready_haswell_host_exits_zero(
    runner: CliRunner, tmp_path: Path, vm_name: str
) -> None:
    root = build_host(tmp_path / "host", HASWELL_DEVICES, usb=[USB_TUNER])
    bind(root, "0000:00:02.0", "vfio-pci")
    args = ["host", "preflight", "-c", str(config(tmp_path, vm_name))]
    result = runner.invoke(build_app(), [*args, "--sysfs-root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert set(report["checks"][0]) == {"name", "status", "detail", "fix"}
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["libvirt"] == "pass"
    assert statuses["libvirt-vfio"] == "warn", "the test driver has no domain capabilities"


def test_preflight_with_iommu_off_exits_one_and_prints_the_fix(
    runner: CliRunner, tmp_path: Path, vm_name: str
) -> None:
    root = build_host(tmp_path / "host", HASWELL_DEVICES, iommu=False, cmdline=HASWELL_CMDLINE_OFF)
    args = ["host", "preflight", "-c", str(config(tmp_path, vm_name)), "--no-libvirt"]
    result = runner.invoke(build_app(), [*args, "--sysfs-root", str(root)])
    assert result.exit_code == 1
    assert "preflight failed" in result.stdout
    assert "intel_iommu=on" in result.stdout


def ready_host(tmp_path: Path) -> Path:
    """A fixture Haswell host whose iGPU waits on vfio-pci (this machine has no iGPU)."""
    root = build_host(tmp_path / "host", HASWELL_DEVICES, usb=[USB_TUNER])
    bind(root, "0000:00:02.0", "vfio-pci")
    return root


def test_up_status_down_round_trip(
    runner: CliRunner, tmp_path: Path, vm_name: str, observer: Hypervisor
) -> None:
    cfg = str(config(tmp_path, vm_name))
    app = build_app()
    try:
        root = str(ready_host(tmp_path))
        up = runner.invoke(app, ["host", "up", "-c", cfg, "--sysfs-root", root])
        assert up.exit_code == 0, up.output
        assert f"{vm_name}: running (booted)" in up.stdout
        status = runner.invoke(app, ["host", "status", "-c", cfg, "--json"])
        data = json.loads(status.stdout)
        assert (data["state"], data["reason"], data["guest_agent"]) == ("running", "booted", None)
        down = runner.invoke(app, ["host", "down", "-c", cfg, "--timeout", "5"])
        assert down.exit_code == 0, down.output
        assert f"{vm_name}: shut down" in down.stdout
        assert observer.status(vm_name).state is VmState.SHUTOFF
    finally:
        if observer.exists(vm_name):
            observer.undefine(vm_name)


def test_status_of_an_undefined_vm_says_absent(
    runner: CliRunner, tmp_path: Path, vm_name: str
) -> None:
    result = runner.invoke(build_app(), ["host", "status", "-c", str(config(tmp_path, vm_name))])
    assert result.exit_code == 0
    assert "state: absent" in result.stdout


def test_down_of_an_undefined_vm_fails_naming_it(
    runner: CliRunner, tmp_path: Path, vm_name: str
) -> None:
    result = runner.invoke(build_app(), ["host", "down", "-c", str(config(tmp_path, vm_name))])
    assert result.exit_code == 1
    assert f"domain {vm_name}: not defined" in result.stderr


def test_bad_config_exits_two_naming_the_field(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[host.vm.gpu]\nkind = "magic"\n')
    result = runner.invoke(build_app(), ["host", "xml", "-c", str(path)])
    assert result.exit_code == 2
    assert "host.vm.gpu.kind" in result.stderr


def test_run_without_a_broker_exits_two(runner: CliRunner, tmp_path: Path, vm_name: str) -> None:
    result = runner.invoke(build_app(), ["host", "run", "-c", str(config(tmp_path, vm_name))])
    assert result.exit_code == 2
    assert "broker_url" in result.stderr


def test_missing_sysfs_root_exits_two(runner: CliRunner, tmp_path: Path) -> None:
    args = ["host", "preflight", "-c", str(RECIPE), "--sysfs-root", str(tmp_path / "nope")]
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 2


def test_run_as_a_service_starts_the_vm_for_work_and_stops_on_sigterm(
    tmp_path: Path, vm_name: str, redis_server: RedisProcess
) -> None:
    cfg = config(tmp_path, vm_name)
    text = cfg.read_text().replace("poll_interval = 1.0", "poll_interval = 0.1")
    cfg.write_text(f'broker_url = "{redis_server.url}"\n' + text)
    client = redis.Redis.from_url(redis_server.url)
    client.delete("encode.gpu")
    kamado = Path(sys.executable).with_name("kamado")
    proc = subprocess.Popen(
        [str(kamado), "host", "run", "-c", str(cfg), "--sysfs-root", str(ready_host(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The example leaves agent_name empty: the heartbeat is under this machine's name.
        key = host_key(socket.gethostname())
        wait_for(lambda: client.get(key), timeout=15)
        client.lpush("encode.gpu", '{"body": "e30="}')

        def running() -> bool:
            raw = client.get(key)
            return raw is not None and HostHeartbeat.model_validate_json(raw).vm_state == "running"

        wait_for(running, timeout=10)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        client.delete("encode.gpu", key)
        client.close()
    assert proc.returncode == 0, output
    assert f"start {vm_name}: 1 job(s) waiting" in output


def test_host_status_finds_a_real_workers_heartbeat_under_the_default_name(
    runner: CliRunner, tmp_path: Path, redis_server: RedisProcess
) -> None:
    # The guest's hostname is the VM's name; its worker runs with no --hostname, as the
    # guest agent's unit does, so its node (and heartbeat) is celery@<hostname>.
    hostname = socket.gethostname()
    cfg = config(tmp_path, hostname)
    cfg.write_text(f'broker_url = "{redis_server.url}"\n' + cfg.read_text())
    argv = [sys.executable, "-m", "worker.cli.main", "worker", "--queues", "encode.cpu"]
    env = environ_without_kamado() | worker_env(redis_server.url, tmp_path / "worker")
    daemon = process.Daemon(argv, env=env, log=tmp_path / "worker.log")
    client = redis.Redis.from_url(redis_server.url)
    try:
        key = worker_key(f"celery@{hostname}")
        wait_for(lambda: client.get(key) or not daemon.alive(), timeout=90)
        assert daemon.alive(), daemon.log_tail(30)
        result = runner.invoke(build_app(), ["host", "status", "-c", str(cfg), "--json"])
        data = json.loads(result.stdout)
        assert data["guest_worker"] == f"celery@{hostname}", "status names whom it looks for"
        assert data["worker"] is not None, data
        assert data["worker"]["hostname"] == f"celery@{hostname}"
    finally:
        daemon.stop(grace=15)
        client.delete(worker_key(f"celery@{hostname}"))
        client.close()


def test_preflight_refuses_the_hosts_root_disk_and_prints_what_it_is(tmp_path: Path) -> None:
    from tests.unit.host_agent.sysfs_fixtures import (
        HASWELL_NVME_ROOT,
        NVME_ADDRESS,
        NVME_ROOT_DISK,
        NVME_ROOT_MOUNTINFO,
    )

    root = build_host(
        tmp_path / "host",
        HASWELL_NVME_ROOT,
        block=[(NVME_ADDRESS, NVME_ROOT_DISK)],
        mountinfo=NVME_ROOT_MOUNTINFO,
    )
    bind(root, "0000:00:02.0", "vfio-pci")
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(RECIPE.read_text() + '\n[[host.vm.pci]]\naddress = "01:00.0"\nlabel = "tuner"\n')
    argv = [sys.executable, "-m", "worker.cli.main", "host", "preflight", "-c", str(cfg),
            "--sysfs-root", str(root), "--no-libvirt"]  # fmt: skip
    env = environ_without_kamado() | {"COLUMNS": "600"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "preflight failed" in done.stdout
    line = next(row for row in done.stdout.splitlines() if f"host-use {NVME_ADDRESS}" in row)
    assert "NVMe SSD Controller SM981/PM981/PM983 [144d:a808]" in line
    assert "nvme0n1p2 mounted on /" in line


def test_up_and_run_refuse_a_vm_that_would_take_the_hosts_root_disk(
    runner: CliRunner,
    tmp_path: Path,
    vm_name: str,
    observer: Hypervisor,
    redis_server: RedisProcess,
) -> None:
    from tests.unit.host_agent.sysfs_fixtures import (
        HASWELL_NVME_ROOT,
        NVME_ADDRESS,
        NVME_ROOT_DISK,
        NVME_ROOT_MOUNTINFO,
    )

    root = build_host(
        tmp_path / "host",
        HASWELL_NVME_ROOT,
        block=[(NVME_ADDRESS, NVME_ROOT_DISK)],
        mountinfo=NVME_ROOT_MOUNTINFO,
    )
    bind(root, "0000:00:02.0", "vfio-pci")
    cfg = config(tmp_path, vm_name)
    text = cfg.read_text() + '\n[[host.vm.pci]]\naddress = "01:00.0"\nlabel = "tuner"\n'
    cfg.write_text(f'broker_url = "{redis_server.url}"\n' + text)
    for command in ("up", "run"):
        args = ["host", command, "-c", str(cfg), "--sysfs-root", str(root)]
        result = runner.invoke(build_app(), args)
        assert result.exit_code == 2, result.output
        assert "refusing to start the VM" in result.output
        assert "nvme0n1p2 mounted on /" in result.output
    assert not observer.exists(vm_name) or not observer.status(vm_name).active
