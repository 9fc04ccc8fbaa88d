"""Waiters on a job are woken by its end, not only by their next poll (real redis-server)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.redis_proc import RedisProcess
from worker.broker.registry import Registry
from worker.jobs import Job, JobState

pytestmark = pytest.mark.integration

ENDS = [JobState.DONE, JobState.FAILED, JobState.CANCELLED]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(state=st.sampled_from([*ENDS, JobState.QUEUED]), by=st.sampled_from(["finish", "settle"]))
def test_a_waiter_is_woken_exactly_when_a_job_reaches_a_final_state(
    redis_server: RedisProcess, tmp_path: Path, state: JobState, by: str
) -> None:
    registry = Registry.connect(redis_server.url)
    job = Job.create(str(tmp_path / f"{state.value}-{by}.ts"), "h264-x264", output_dir=tmp_path)
    registry.record(job, queue="encode.cpu", force=True)
    with registry.endings() as endings:
        if by == "finish":
            assert registry.acquire(job.id, "a1", "w1").status == "ok"
            ended = threading.Thread(target=registry.finish, args=(job.id, "a1", state))
        else:
            ended = threading.Thread(target=registry.settle, args=(job.id, state))
        ended.start()
        ended.join(30)
        woken = endings.wait(30.0 if state.final else 0.3)
    record = registry.get(job.id)
    assert record is not None and record.state is state
    assert woken is state.final, "woken by a final state, and only by one"
    registry.close()


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(state=st.sampled_from(ENDS), kind=st.sampled_from([None, "input", "backend"]))
def test_whoever_sees_a_job_end_sees_the_attempt_that_ended_it(
    redis_server: RedisProcess, tmp_path: Path, state: JobState, kind: str | None
) -> None:
    """The end is one write: a waiter woken by it never reads the attempt still running."""
    registry = Registry.connect(redis_server.url)
    job = Job.create(str(tmp_path / f"{state.value}.ts"), "h264-x264", output_dir=tmp_path)
    registry.record(job, queue="encode.cpu", force=True)
    assert registry.acquire(job.id, "a1", "w1").status == "ok"
    with registry.endings() as endings:
        ended = threading.Thread(
            target=registry.finish, args=(job.id, "a1", state), kwargs={"kind": kind}
        )
        ended.start()
        assert endings.wait(30.0)
        record = registry.get(job.id, with_history=True)  # at once, as the CLI does
        ended.join(30)
    assert record is not None and record.state is state
    (attempt,) = record.history
    assert attempt.ended_at is not None
    assert attempt.outcome == ("done" if state is JobState.DONE else state.value)
    assert attempt.kind == kind
    registry.close()
