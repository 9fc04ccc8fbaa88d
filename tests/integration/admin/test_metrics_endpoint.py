"""kamado's Prometheus endpoint over HTTP on a real redis-server, parsed by prometheus-client."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.admin.web import get
from tests.support.redis_proc import RedisProcess
from worker.admin.metrics import serve_metrics
from worker.broker.counters import count_watchdog
from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import attempts_key, host_key, job_key, lease_key
from worker.broker.presence import publish, record_speed
from worker.broker.publish import publish as publish_message
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.jobs import Job, JobState
from worker.progress import Progress
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def broker(own_redis: RedisProcess, tmp_path: Path) -> Iterator[tuple[Settings, Registry, Celery]]:
    settings = Settings(broker_url=own_redis.url, state_dir=tmp_path / "state")
    registry = Registry.connect(own_redis.url, max_attempts=3)
    app = create_app(settings)
    try:
        yield settings, registry, app
    finally:
        app.close()
        registry.close()


def job(tmp_path: Path, name: str) -> Job:
    return Job.create(str(tmp_path / name), "h264-x264")


def test_an_empty_broker_reports_zero_jobs_and_empty_queues(
    broker: tuple[Settings, Registry, Celery],
) -> None:
    settings, registry, _ = broker
    server = serve_metrics(settings, "127.0.0.1", 0, registry=registry)
    try:
        samples = scrape(server.port)
    finally:
        server.close()
    assert value(samples, "kamado_up") == 1
    for state in JobState:
        assert value(samples, "kamado_jobs", state=state.value) == 0
    assert value(samples, "kamado_queue_messages", queue="encode.gpu") == 0
    assert value(samples, "kamado_spool_submissions") == 0


def test_jobs_queues_speeds_failures_vms_and_spool_are_reported(
    broker: tuple[Settings, Registry, Celery], tmp_path: Path
) -> None:
    settings, registry, app = broker
    # Two queued jobs with messages: one urgent on the GPU queue, one on the CPU queue.
    for name, queue, priority in (("a.ts", "encode.gpu", 0), ("b.ts", "encode.cpu", 7)):
        item = job(tmp_path, name).model_copy(update={"priority": priority})
        registry.record(item, queue=queue)
        publish_message(app, item, queue)
    # One job running on a worker with live progress.
    running = job(tmp_path, "c.ts")
    registry.record(running, queue="encode.gpu")
    assert registry.acquire(running.id, "att-run", "vm1@guest").status == "ok"
    registry.update(
        running.id,
        "att-run",
        Progress(state=JobState.ENCODING, percent=40, fps=212.5, speed=7.1, backend="vaapi"),
    )
    # One job that failed twice: a lost worker, then a broken input.
    failed = job(tmp_path, "d.ts")
    registry.record(failed, queue="encode.cpu")
    assert registry.acquire(failed.id, "att-1", "box@cpu").status == "ok"
    registry.client.delete(lease_key(failed.id))  # the lease expired: the worker died
    assert registry.acquire(failed.id, "att-2", "box@cpu").status == "ok"
    registry.finish(failed.id, "att-2", JobState.FAILED, error="d.ts: no video", kind="input")
    # Heartbeats: a worker, a host agent with its VM running; measured speeds.
    publish(registry, WorkerHeartbeat(hostname="vm1@guest", queues=["encode.gpu"]), ttl=30)
    beat = HostHeartbeat(name="kvm1", vm_state="running", preflight_ok=True)
    registry.client.set(host_key("kvm1"), beat.model_dump_json(), px=30_000)
    record_speed(registry, "vm1@guest", "vaapi", 240.0, 8.0)
    record_speed(registry, "box@cpu", "x264", 1.9, 0.063)
    # The spool holds two submissions waiting for the broker.
    spool = settings.state_dir / "spool"
    spool.mkdir(parents=True)
    for n in range(2):
        (spool / f"sub-{n}.json").write_text(json.dumps({"n": n}), encoding="utf-8")
    old = time.time() - 120
    os.utime(spool / "sub-0.json", (old, old))
    (spool / "partial.tmp").write_text("{", encoding="utf-8")

    server = serve_metrics(settings, "127.0.0.1", 0)
    try:
        samples = scrape(server.port)
    finally:
        server.close()

    assert value(samples, "kamado_up") == 1
    assert value(samples, "kamado_jobs", state="queued") == 2
    assert value(samples, "kamado_jobs", state="encoding") == 1
    assert value(samples, "kamado_jobs", state="failed") == 1
    assert value(samples, "kamado_queue_messages", queue="encode.gpu") == 1
    assert value(samples, "kamado_queue_messages", queue="encode.cpu") == 1
    assert value(samples, "kamado_running_jobs", worker="vm1@guest", backend="vaapi") == 1
    assert value(samples, "kamado_running_encode_fps", worker="vm1@guest", backend="vaapi") == 212.5
    assert (
        value(samples, "kamado_running_encode_realtime_factor", worker="vm1@guest", backend="vaapi")
        == 7.1
    )
    assert value(samples, "kamado_encode_fps", worker="vm1@guest", backend="vaapi") == 240.0
    assert (
        value(samples, "kamado_encode_realtime_factor", worker="box@cpu", backend="x264") == 0.063
    )
    assert value(samples, "kamado_encoded_jobs_total", worker="box@cpu", backend="x264") == 1
    assert value(samples, "kamado_attempt_failures_total", reason="lost") == 1
    assert value(samples, "kamado_attempt_failures_total", reason="input") == 1
    assert value(samples, "kamado_worker_up", worker="vm1@guest") == 1
    assert value(samples, "kamado_worker_queue", worker="vm1@guest", queue="encode.gpu") == 1
    assert value(samples, "kamado_vm_state", host="kvm1", state="running") == 1
    assert value(samples, "kamado_vm_running", host="kvm1") == 1
    assert value(samples, "kamado_host_preflight_ok", host="kvm1") == 1
    age = value(samples, "kamado_host_heartbeat_age_seconds", host="kvm1")
    assert age is not None and 0 <= age < 30
    assert value(samples, "kamado_spool_submissions") == 2
    oldest = value(samples, "kamado_spool_oldest_age_seconds")
    assert oldest is not None and 110 < oldest < 300


def test_a_broker_that_is_down_reports_kamado_up_zero_instead_of_failing_the_scrape(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    settings = Settings(broker_url=own_redis.url, state_dir=tmp_path)
    server = serve_metrics(settings, "127.0.0.1", 0)
    try:
        own_redis.kill()
        samples = scrape(server.port)
        assert value(samples, "kamado_up") == 0
        assert value(samples, "kamado_jobs", state="queued") is None
        own_redis.start()
        assert value(scrape(server.port), "kamado_up") == 1
    finally:
        server.close()


def scrape_types(port: int) -> dict[str, str]:
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {f.name: f.type for f in text_string_to_metric_families(body.decode())}


def test_attempt_failures_and_watchdog_actions_are_counters_that_never_go_down(
    broker: tuple[Settings, Registry, Celery], tmp_path: Path
) -> None:
    settings, registry, _ = broker
    server = serve_metrics(settings, "127.0.0.1", 0, registry=registry)
    try:
        assert scrape_types(server.port)["kamado_attempt_failures"] == "counter"
        assert scrape_types(server.port)["kamado_watchdog_actions"] == "counter"
        seen: list[float] = []
        for n in range(3):
            item = job(tmp_path, f"f{n}.ts")
            registry.record(item, queue="encode.cpu")
            assert registry.acquire(item.id, f"att-{n}", "box@cpu").status == "ok"
            registry.finish(item.id, f"att-{n}", JobState.FAILED, error="bad", kind="input")
            # The job record goes away (expired, or pruned from the scan window): the
            # failure it had stays counted, so rate() over the counter stays right.
            registry.client.delete(job_key(item.id), attempts_key(item.id))
            seen.append(value(scrape(server.port), "kamado_attempt_failures_total",
                              reason="input") or 0)  # fmt: skip
        assert seen == [1, 2, 3]
        count_watchdog(registry, "vm1@guest", "restart")
        count_watchdog(registry, "vm1@guest", "restart")
        count_watchdog(registry, "vm1@guest", "exit")
        samples = scrape(server.port)
        assert value(samples, "kamado_watchdog_actions_total",
                     worker="vm1@guest", action="restart") == 2  # fmt: skip
        assert value(samples, "kamado_watchdog_actions_total",
                     worker="vm1@guest", action="exit") == 1  # fmt: skip
    finally:
        server.close()
