"""Routing with workers that report different speeds: where each job ends up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.delivery.deliverer import Deliverer
from scheduler.queues import BrokerState
from scheduler.service import Service
from scheduler.spool.durable import Spool
from scheduler.submission import Submission
from tests.integration.scheduler.conftest import ROOT, Kamado
from tests.support.procs import wait_for
from tests.support.redis_proc import free_port
from tests.support.workers import running_worker
from worker.broker.heartbeat import BackendSpeed, HostHeartbeat, WorkerHeartbeat, now
from worker.broker.keys import host_key
from worker.broker.presence import publish, record_speed
from worker.broker.registry import Registry
from worker.jobs import Job, JobState
from worker.progress import Progress
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def deliverer(kamado: Kamado, tmp_path: Path) -> Iterator[Deliverer]:
    settings = Settings(broker_url=kamado.broker_url, state_dir=tmp_path / "state")
    deliverer = Deliverer(settings)
    yield deliverer
    deliverer.close()


def beat(registry: Registry, name: str, queue: str, backend: str, realtime: float,
         job: str | None = None) -> None:  # fmt: skip
    """A worker's heartbeat and measured speed, written through the presence contract."""
    record_speed(registry, name, backend, None, realtime)
    speed = BackendSpeed(backend=backend, realtime=realtime)
    publish(registry, WorkerHeartbeat(hostname=name, queues=[queue], backends=[speed],
                                      current_job=job), ttl=60)  # fmt: skip


def submit(deliverer: Deliverer, name: str, profile: str, length_s: float) -> str:
    job = Job.create(f"/rec/{name}.ts", profile, priority=7)
    deliverer.submit(
        Submission(job=job, origin="enqueue", recorder_path=job.source, estimate_s=length_s)
    )
    return job.id


def test_software_capable_jobs_move_to_the_cpu_only_when_they_finish_sooner_there(
    deliverer: Deliverer, registry: Registry
) -> None:
    busy = submit(deliverer, "running", "h264-intel", 6000)
    assert registry.acquire(busy, "att", "fast@hw").status == "ok"
    BrokerState(registry).remove(busy, ["encode.gpu"])  # the fast worker took it
    registry.update(busy, "att", Progress(percent=10, eta_s=600.0, backend="qsv"))
    beat(registry, "fast@hw", "encode.gpu", "qsv", 10.0, job=busy)
    beat(registry, "slow@cpu", "encode.cpu", "x264", 0.5)
    hardware_only = submit(deliverer, "intel-only", "h264-intel", 60)
    short = submit(deliverer, "short", "h264-auto", 60)  # cpu 120 s < gpu 600+6+6 s
    long = submit(deliverer, "long", "h264-auto", 3600)  # cpu 7200 s > gpu ≈ 970 s
    service = Service(deliverer.settings, deliverer, Spool(deliverer.settings.state_dir / "s"))
    moved = service.route_once()
    assert [m.job_id for m in moved] == [short]
    state = BrokerState(registry)
    assert [m.job_id for m in state.waiting("encode.gpu")] == [hardware_only, long]
    assert [m.job_id for m in state.waiting("encode.cpu")] == [short]
    record = registry.get(short)
    assert record is not None and record.queue == "encode.cpu"
    assert service.route_once() == []  # one job per software worker waits at a time


def test_a_job_a_software_worker_has_just_taken_counts_before_its_heartbeat_names_it(
    deliverer: Deliverer, registry: Registry
) -> None:
    busy = submit(deliverer, "running", "h264-intel", 6000)
    assert registry.acquire(busy, "att", "fast@hw").status == "ok"
    BrokerState(registry).remove(busy, ["encode.gpu"])
    registry.update(busy, "att", Progress(percent=10, eta_s=600.0, backend="qsv"))
    beat(registry, "fast@hw", "encode.gpu", "qsv", 10.0, job=busy)
    beat(registry, "slow@cpu", "encode.cpu", "x264", 0.5)  # its last heartbeat: idle
    taken = submit(deliverer, "taken", "h264-x264", 600)
    with deliverer.app.connection_for_read() as conn:  # a real kombu delivery, not yet acked
        message = conn.default_channel.basic_get("encode.cpu", no_ack=False)
        assert message is not None and message.headers["id"].startswith(taken)
        short = submit(deliverer, "short", "h264-auto", 60)  # cpu 120 s; gpu reaches it at 606 s
        assert deliverer.snapshot.cluster().software.free_at == [1200.0]
        service = Service(deliverer.settings, deliverer, Spool(deliverer.settings.state_dir / "s"))
        assert service.route_once() == []  # on software it would end at 1320 s
        assert [m.job_id for m in BrokerState(registry).waiting("encode.gpu")] == [short]


def test_an_auto_job_moves_to_the_cpu_once_the_booted_guest_proves_only_x264(
    deliverer: Deliverer, registry: Registry
) -> None:
    host = HostHeartbeat(name="vmhost", vm_state="running", last_action="start: work",
                         last_action_at=now(), guest_worker="celery@g1")  # fmt: skip
    registry.client.set(host_key("vmhost"), host.model_dump_json(), ex=60)
    job = submit(deliverer, "auto", "h264-auto", 1800)  # the VM boots: wait for its GPU
    assert [m.job_id for m in BrokerState(registry).waiting("encode.gpu")] == [job]
    beat(registry, "celery@g1", "encode.cpu", "x264", 1.0)  # up, and no hardware proven
    service = Service(deliverer.settings, deliverer, Spool(deliverer.settings.state_dir / "s"))
    moved = service.route_once()
    assert [m.job_id for m in moved] == [job]
    state = BrokerState(registry)
    assert state.waiting("encode.gpu") == []
    assert [m.job_id for m in state.waiting("encode.cpu")] == [job]
    record = registry.get(job)
    assert record is not None and record.queue == "encode.cpu"


def test_new_recordings_overtake_the_backlog(deliverer: Deliverer, registry: Registry) -> None:
    backlog = [submit(deliverer, f"old{i}", "h264-intel", 1800) for i in range(3)]
    job = Job.create("/rec/new.ts", "h264-intel", priority=2)
    deliverer.submit(Submission(job=job, origin="epgstation", recorder_path=job.source))
    waiting = [m.job_id for m in BrokerState(registry).waiting("encode.gpu")]
    assert waiting == [job.id, *backlog]


def service_env() -> dict[str, str]:
    """`kamado scheduler run`'s environment: its metrics on a port of its own, since the
    other test process may run a scheduler service at the same time."""
    return {"PATH": os.environ["PATH"], "KAMADO_METRICS__PORT": str(free_port())}


def test_a_job_waiting_for_absent_hardware_is_encoded_by_a_real_software_worker(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "録画 'x'.ts"
    rec.write_bytes(tiny_ts.read_bytes())
    job_id = kamado.json("enqueue", str(rec))["queued"][0]
    assert [m.job_id for m in BrokerState(registry).waiting("encode.gpu")] == [job_id]
    argv = [sys.executable, "-m", "worker.cli.main", "scheduler", "run", "--config",
            str(kamado.config)]  # fmt: skip
    service = subprocess.Popen(argv, env=service_env(), cwd=ROOT,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        with running_worker(kamado.broker_url, tmp_path / "w", queues="encode.cpu"):

            def done() -> bool:
                record = registry.get(job_id)
                return record is not None and record.state is JobState.DONE

            assert wait_for(done, 60, interval=0.2)
    finally:
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=20)
    assert f"job {job_id} moved to encode.cpu" in err
    assert (tmp_path / "録画 'x'.mp4").stat().st_size > 0


def test_the_service_warns_about_a_hardware_only_job_no_worker_will_take(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "ＮＨＫ.ts"
    rec.write_bytes(tiny_ts.read_bytes())
    job_id = kamado.json("enqueue", "--profile", "h264-intel", str(rec))["queued"][0]
    argv = [sys.executable, "-m", "worker.cli.main", "scheduler", "run", "--config",
            str(kamado.config)]  # fmt: skip
    service = subprocess.Popen(argv, env=service_env(), cwd=ROOT,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    stderr = service.stderr
    assert stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
    reader.start()
    try:
        warned = "1 job(s) wait in encode.gpu and no live worker consumes it"
        assert wait_for(lambda: any(warned in line for line in lines), 60), "".join(lines)
        threading.Event().wait(2.0)  # more service ticks
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(20)
        reader.join(10)
        stderr.close()
    err = "".join(lines)
    assert err.count("no live worker consumes it") == 1, "said once, not every tick"
    assert [m.job_id for m in BrokerState(registry).waiting("encode.gpu")] == [job_id]
