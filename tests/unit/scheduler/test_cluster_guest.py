"""The cluster a snapshot builds when a host's VM runs: its guest's heartbeat decides.

A guest worker that is up and beating with only x264 brings no hardware, so a job that
accepts software (h264-auto) goes to, or moves to, encode.cpu at once. The snapshot reads
Redis through the registry and the broker state; here both are small in-memory fakes.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

import scheduler.cluster
from scheduler.cluster import Snapshot
from scheduler.queues import BrokerState, Message
from scheduler.routing import Pending, initial_queue, plan
from worker.broker.heartbeat import BackendSpeed, HostHeartbeat, WorkerHeartbeat, now
from worker.broker.registry import Registry
from worker.profiles import BUILTIN_PROFILES
from worker.settings.model import Settings

AUTO = BUILTIN_PROFILES["h264-auto"]
GUEST = "celery@g1"


class FakeClient:
    """The one Redis call the snapshot makes directly: kombu's unacked hash (empty)."""

    def hvals(self, key: str) -> list[str]:
        return []


class FakeRegistry:
    """Runs a call as the real registry does, without Redis behind it."""

    client = FakeClient()

    def call(self, what: str, fn: Any, *args: Any) -> Any:
        return fn(*args)


class FakeState:
    """Host heartbeats and empty queues."""

    def __init__(self, hosts: list[HostHeartbeat]) -> None:
        self._hosts = hosts

    def hosts(self) -> list[HostHeartbeat]:
        return self._hosts

    def waiting(self, queue: str) -> list[Message]:
        return []

    def estimates(self, job_ids: list[str]) -> dict[str, float]:
        return {}


def guest_beat(*backends: str) -> WorkerHeartbeat:
    """The guest's heartbeat with these proven backends and the queues they give."""
    hardware = any(b != "x264" for b in backends)
    queues = ["encode.gpu", "encode.cpu"] if hardware else ["encode.cpu"]
    speeds = [BackendSpeed(backend=b, realtime=8.0 if b != "x264" else 1.0) for b in backends]
    return WorkerHeartbeat(hostname=GUEST, queues=queues, backends=speeds)


def snapshot(monkeypatch: pytest.MonkeyPatch, beats: list[WorkerHeartbeat]) -> Snapshot:
    """A snapshot of one host whose VM has just been started, with these live workers."""
    monkeypatch.setattr(scheduler.cluster, "workers", lambda registry: beats)
    host = HostHeartbeat(name="vmhost", vm_state="running", last_action="start: work",
                         last_action_at=now(), guest_worker=GUEST)  # fmt: skip
    state = cast(BrokerState, FakeState([host]))
    return Snapshot(cast(Registry, FakeRegistry()), state, Settings())


def test_an_auto_job_waiting_for_a_booting_vm_moves_once_its_guest_proves_only_x264(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiting = [Pending("auto", 1800, True)]
    cpu = WorkerHeartbeat(hostname="celery@cpu", queues=["encode.cpu"],
                          backends=[BackendSpeed(backend="x264", realtime=1.0)])  # fmt: skip
    # The VM boots, its guest not beating yet: hardware is expected within the boot time.
    booting = snapshot(monkeypatch, [cpu]).cluster()
    assert booting.hardware.available
    assert initial_queue(AUTO, booting) == "encode.gpu"
    assert plan(waiting, booting, lookahead=1) == []
    # The guest is up serving encode.cpu with x264 only: no hardware comes from it.
    up = snapshot(monkeypatch, [cpu, guest_beat("x264")])
    cluster = up.cluster()
    assert not cluster.hardware.available
    assert plan(waiting, cluster, lookahead=1) == ["auto"]
    assert initial_queue(AUTO, up.cluster(with_queues=False)) == "encode.cpu"


def test_the_guest_alone_on_encode_cpu_takes_the_auto_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = snapshot(monkeypatch, [guest_beat("x264")]).cluster()
    assert cluster.hardware.free_at == [] and cluster.software_workers == 1
    assert plan([Pending("auto", 1800, True)], cluster, lookahead=1) == ["auto"]


def test_a_guest_with_a_hardware_backend_keeps_the_job_on_encode_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = snapshot(monkeypatch, [guest_beat("qsv", "x264")]).cluster()
    assert cluster.hardware.free_at == [0.0]
    assert initial_queue(AUTO, cluster) == "encode.gpu"
    assert plan([Pending("auto", 1800, True)], cluster, lookahead=1) == []
