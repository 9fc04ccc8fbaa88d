"""The reconciler: no job stays in limbo.

A job the registry holds as queued or running, with no live lease and no message in any
queue (its worker was killed, its VM crashed, Redis lost it, publishing failed), is
published again; a job past the attempt limit fails with the reasons of its attempts.
The scheduler service runs a pass every ``jobs.reconcile_interval`` seconds; the one-box
client runs it while it waits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from celery import Celery

from worker.broker.publish import publish
from worker.broker.registry import Registry
from worker.jobs import JobState, now
from worker.profiles import QUEUE_CPU, QUEUE_GPU

__all__ = ["reconcile"]

log = logging.getLogger("kamado.reconcile")


@dataclass
class Pass:
    """What one reconciler pass did."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    checked: int = 0


def reconcile(
    app: Celery,
    registry: Registry,
    *,
    grace: float,
    queues: list[str] | None = None,
) -> Pass:
    """One pass over the active jobs; ``grace`` skips jobs touched in the last seconds."""
    result = Pass()
    with_messages = registry.jobs_with_messages(queues or [QUEUE_GPU, QUEUE_CPU])
    cutoff = now() - timedelta(seconds=grace)
    for job_id in registry.active_ids():
        record = registry.get(job_id)
        result.checked += 1
        if record is None or record.state.final or record.state is JobState.HELD:
            continue
        if registry.lease_alive(job_id) or job_id in with_messages:
            continue
        if record.updated_at and record.updated_at > cutoff:
            continue
        if record.attempts >= registry.max_attempts:
            reasons = "; ".join(
                f"attempt {r.number}: {r.error}" for r in registry.history(job_id) if r.error
            )
            message = f"{record.job.source}: gave up after {record.attempts} attempts ({reasons})"
            if registry.settle(job_id, JobState.FAILED, message):
                result.failed.append(job_id)
                log.warning("job %s failed: %s", job_id, message)
            continue
        if registry.settle(job_id, JobState.QUEUED, record.error or ""):
            publish(app, record.job, record.queue or QUEUE_CPU)
            result.requeued.append(job_id)
            log.warning("job %s was in limbo (%s); published again", job_id, record.state.value)
    return result
