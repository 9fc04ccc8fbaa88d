"""Redis killed, restarted or frozen: no job lost, no stale attempt commits."""

from __future__ import annotations

import time

import pytest

from tests.integration.faults.conftest import LEASE_TTL, Rig
from tests.support.media import sha256
from tests.support.procs import pids_with, wait_for

pytestmark = pytest.mark.integration


def test_redis_killed_and_restarted_mid_queue_and_mid_encode_loses_no_job(rig: Rig) -> None:
    sources = [rig.source(name=f"rec-{n}.ts") for n in range(3)]
    digests = [sha256(s) for s in sources]
    rig.start_worker("a")
    rig.start_reconciler()
    jobs = [rig.submit(s) for s in sources]
    rig.wait_encoding(jobs[0])  # one encoding, two queued
    rig.redis.kill()  # SIGKILL: only what the AOF holds survives
    time.sleep(1.0)
    rig.redis.start()
    for job, source, digest in zip(jobs, sources, digests, strict=True):
        record = rig.wait_state(job, {rig_state("done"), rig_state("failed")}, timeout=180)
        assert record.state.value == "done", record
        assert sha256(source) == digest
    outputs = sorted(p.name for p in rig.out.iterdir())
    assert outputs == sorted(f"rec-{n}.mp4" for n in range(3))


def rig_state(name: str):  # type: ignore[no-untyped-def]
    from worker.jobs import JobState

    return JobState(name)


def test_a_frozen_broker_longer_than_the_lease_stops_the_stale_attempt(rig: Rig) -> None:
    source = rig.source()
    digest = sha256(source)
    rig.start_worker("a")
    job = rig.submit(source)
    first = rig.wait_encoding(job)
    rig.redis.pause()  # SIGSTOP: the network to the broker is cut
    time.sleep(LEASE_TTL * 2.5)
    # The cut-off attempt noticed its lease expired and stopped ffmpeg without committing.
    assert wait_for(lambda: not pids_with(str(rig.out)), timeout=10)
    assert list(rig.out.iterdir()) == []
    rig.redis.resume()
    rig.start_reconciler()
    record = rig.assert_done_once(job, source, digest)
    assert first.attempt_id not in {a.attempt_id for a in record.history if a.outcome == "done"}
    assert record.attempts >= 2
