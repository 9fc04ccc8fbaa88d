"""The reconciler and a worker's take, on a real redis-server with kombu's own layout.

kombu takes a message in two steps (BRPOP off the queue, then HSET into ``unacked``) and
the task takes the lease later still. A job caught between them must not be published
again (a duplicate delivery, seen in the three-box tour where the guest runs under TCG);
a delivery older than the grace with no lease is a dead worker's and must be.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_proc import RedisProcess
from worker.broker.keys import UNACKED, UNACKED_INDEX, queue_lists
from worker.broker.reconcile import reconcile
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.encode.sample import make_sample
from worker.jobs import Job, JobState
from worker.profiles import QUEUE_CPU
from worker.settings.model import Settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration

GRACE = 1.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def registry(broker: RedisProcess) -> Iterator[Registry]:
    connected = Registry.connect(broker.url, lease_ttl=3)
    yield connected
    connected.close()  # no socket left for the garbage collector to find in a later test


def submitted(
    broker: RedisProcess, registry: Registry, tmp_path: Path
) -> tuple[Settings, Registry, Job]:
    settings = Settings(broker_url=broker.url, state_dir=tmp_path / "state")
    source = make_sample(tmp_path / "rec.ts", seconds=0.3, width=320, height=240)
    job = Job.create(str(source), "h264-x264", output_dir=tmp_path)
    submit_job(create_app(settings), registry, settings, job)
    return settings, registry, job


def take(registry: Registry, delay: float) -> threading.Thread:
    """What kombu does: the message off its queue now, into ``unacked`` after ``delay``."""
    client = registry.client
    key = next(k for k in queue_lists([QUEUE_CPU]) if client.llen(k))
    raw = client.rpop(key)
    assert raw is not None
    tag = json.loads(raw)["properties"]["delivery_tag"]

    def record() -> None:
        time.sleep(delay)
        client.zadd(UNACKED_INDEX, {tag: time.time()})
        client.hset(UNACKED, tag, json.dumps([json.loads(raw), "", QUEUE_CPU]))

    thread = threading.Thread(target=record)
    thread.start()
    return thread


def waiting(registry: Registry) -> int:
    return sum(int(registry.client.llen(k)) for k in queue_lists([QUEUE_CPU]))


def test_a_job_caught_between_brpop_and_the_lease_is_not_published_again(
    broker: RedisProcess, registry: Registry, tmp_path: Path
) -> None:
    settings, registry, job = submitted(broker, registry, tmp_path)
    time.sleep(GRACE + 0.5)  # the job itself is older than the grace
    recording = take(registry, delay=0.4)
    passed = reconcile(create_app(settings), registry, grace=GRACE, recheck=0.8)
    recording.join()
    assert passed.requeued == [] and passed.failed == []
    assert waiting(registry) == 0, "a second message for the job a worker is taking"
    record = registry.get(job.id)
    assert record is not None and record.state is JobState.QUEUED


def test_a_delivery_older_than_the_grace_without_a_lease_is_a_dead_workers(
    broker: RedisProcess, registry: Registry, tmp_path: Path
) -> None:
    settings, registry, job = submitted(broker, registry, tmp_path)
    take(registry, delay=0).join()
    time.sleep(GRACE + 0.5)  # no worker took the lease: it died with the message
    passed = reconcile(create_app(settings), registry, grace=GRACE, recheck=0.1)
    assert passed.requeued == [job.id]
    assert waiting(registry) == 1
