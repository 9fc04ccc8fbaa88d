"""The agent loop against a real guest: Debian's kernel under QEMU TCG, embedded libvirt.

Work appears → the agent boots the VM → the guest writes a worker heartbeat through its
only network path (a user-mode forward to the test's redis-server) → idle → a graceful
ACPI shutdown reaches shutoff; then the QEMU process is killed from outside → the agent
restarts the VM. See guest_kit for how the guest is built.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from host_agent.agent import Agent
from host_agent.lifecycle import Hypervisor, VmState
from host_agent.redis_state import RedisState
from tests.integration.host_agent.conftest import wait_for
from tests.support.redis_proc import RedisProcess
from worker.broker.heartbeat import WorkerHeartbeat
from worker.broker.keys import worker_key
from worker.settings.host import HostSettings
from worker.tour import guest_kit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

QUEUE = "encode.gpu"
BOOT_TIMEOUT = 90  # TCG on two slow cores: ~3 s to userspace, ~10 s to Python's first beat

# The guest's program: a worker heartbeat every second through the
# forwarded port, written as raw RESP so the guest needs nothing but the standard library.
HEARTBEAT = r"""
import datetime, json, socket, sys, time

port, name = int(sys.argv[1]), sys.argv[2]


def command(sock, *parts):
    data = b"*%d\r\n" % len(parts)
    for part in parts:
        raw = part.encode()
        data += b"$%d\r\n%s\r\n" % (len(raw), raw)
    sock.sendall(data)
    return sock.recv(1024)


while True:
    try:
        with socket.create_connection(("10.0.2.100", port), timeout=5) as sock:
            while True:
                beat = {
                    "schema_version": 1,
                    "hostname": "celery@" + name,  # a Celery worker's node name
                    "queues": ["encode.gpu"],
                    "current_job": None,
                    "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                }
                key = "kamado:heartbeat:worker:celery@" + name
                command(sock, "SET", key, json.dumps(beat), "PX", "5000")
                print("kamado-guest: heartbeat sent", flush=True)
                time.sleep(1)
    except OSError as e:
        print("kamado-guest: redis unreachable:", e, flush=True)
        time.sleep(0.5)
"""


@pytest.fixture(scope="module")
def kit() -> guest_kit.GuestKit:
    reason = guest_kit.missing()
    if reason:
        pytest.skip(reason)
    return guest_kit.prepare()


def guest_settings(
    name: str, embed_root: Path, kit: guest_kit.GuestKit, port: int, log: Path
) -> HostSettings:
    """A small TCG guest booting the kit, its only way out a forward to Redis."""
    script = log.with_name("heartbeat.py")
    script.write_text(HEARTBEAT)
    run = log.with_name("run.sh")
    run.write_text(f"exec {sys.executable} {script} {port} {name}\n")
    cmdline = kit.cmdline(run, name)
    forward = f"guestfwd=tcp:10.0.2.100:{port}-tcp:127.0.0.1:{port}"
    vm = {
        "name": name,
        "domain_type": "qemu",
        "memory_mib": 512,
        "vcpus": 1,
        "cpu": {"model": "qemu64", "check": "none", "kvm_hidden": False},
        "gpu": {"kind": "none"},
        "network": {"type": "none"},
        "guest_agent_channel": False,
        "boot": {"kernel": str(kit.kernel), "initrd": str(kit.initrd), "cmdline": cmdline},
        "shared_dirs": [{"source": "/", "target": "hostroot"}],
        "serial_log": str(log),
        "on_reboot": "destroy",
        "qemu_args": [
            "-netdev",
            f"user,id=kn0,restrict=on,{forward}",
            "-device",
            "virtio-net-pci,netdev=kn0,bus=pcie.0,addr=0x10",
        ],
    }
    return HostSettings.model_validate(
        {
            "libvirt_uri": f"qemu:///embed?root={embed_root}",
            "agent_name": f"agent-{name}",
            "poll_interval": 0.2,
            "idle_shutdown": 2,
            "shutdown_timeout": 60,
            "restart_backoff": 0.5,
            "heartbeat_interval": 1,
            "vm": vm,
        }
    )


@pytest.fixture
def agent(
    vm_name: str,
    embed_root: Path,
    embedded: Hypervisor,
    kit: guest_kit.GuestKit,
    own_redis: RedisProcess,
    tmp_path: Path,
) -> Iterator[Agent]:
    settings = guest_settings(vm_name, embed_root, kit, own_redis.port, tmp_path / "serial.log")
    running = Agent(settings, state=RedisState(own_redis.url))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(10)
    if embedded.exists(vm_name):
        if embedded.status(vm_name).active:
            embedded.destroy(vm_name)
        embedded.undefine(vm_name)


def qemu_pid(embed_root: Path, name: str) -> int:
    pidfile = next(embed_root.rglob(f"{name}.pid"))
    return int(pidfile.read_text().strip())


def test_real_guest_boots_for_work_beats_shuts_down_when_idle_and_survives_a_kill(
    agent: Agent,
    embedded: Hypervisor,
    embed_root: Path,
    own_redis: RedisProcess,
    vm_name: str,
    tmp_path: Path,
) -> None:
    client = redis.Redis.from_url(own_redis.url)
    serial = tmp_path / "serial.log"

    def guest_beat() -> WorkerHeartbeat | None:
        raw = client.get(worker_key(f"celery@{vm_name}"))
        return WorkerHeartbeat.model_validate_json(raw) if raw else None

    def state() -> VmState:
        return embedded.status(vm_name).state

    wait_for(lambda: embedded.exists(vm_name), timeout=10)
    client.lpush(QUEUE, '{"body": "e30="}')
    wait_for(lambda: state() is VmState.RUNNING, timeout=10)
    # The guest's worker "takes" the job once it is up: the queue empties.
    beat = wait_for(guest_beat, timeout=BOOT_TIMEOUT)
    assert beat.hostname == f"celery@{vm_name}"
    client.delete(QUEUE)

    wait_for(lambda: state() is VmState.SHUTOFF, timeout=60)
    assert embedded.status(vm_name).reason == "shutdown", "graceful, not destroyed"
    assert [r.action for r in agent.history] == ["start", "shutdown"]
    assert "acpid: PWRF/00000080" in serial.read_text(errors="replace")

    client.delete(worker_key(f"celery@{vm_name}"))
    client.lpush(QUEUE, '{"body": "e30="}')
    wait_for(lambda: state() is VmState.RUNNING, timeout=10)
    wait_for(guest_beat, timeout=BOOT_TIMEOUT)
    os.kill(qemu_pid(embed_root, vm_name), signal.SIGKILL)
    restarted = ["start", "shutdown", "start", "start"]
    wait_for(lambda: [r.action for r in agent.history] == restarted, timeout=30)
    assert agent.history[-1].reason.startswith("restart after the VM stopped")
    wait_for(lambda: state() is VmState.RUNNING, timeout=10)
    client.close()
