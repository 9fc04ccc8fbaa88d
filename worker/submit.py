"""Submitting a job: record it in the registry first, then publish its Celery message.

The registry is the outbox: if publishing fails after the record was written, the
reconciler publishes it later, so a job once recorded is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from worker.broker.claims import Claims
from worker.broker.publish import publish
from worker.broker.registry import Registry
from worker.encode.output_contract import check_submission
from worker.jobs import Job, JobState
from worker.profiles import get_profile
from worker.settings.model import Settings
from worker.spans import span

__all__ = ["Submitted", "submit_job"]


@dataclass(frozen=True)
class Submitted:
    """What a submission did: created a job, found it already known, or reset a final one."""

    job: Job
    outcome: str  # created, exists, reset
    state: JobState
    task_id: str | None
    queue: str


def submit_job(
    app: Celery,
    registry: Registry,
    settings: Settings,
    job: Job,
    *,
    queue: str | None = None,
    force: bool = False,
    held: bool = False,
) -> Submitted:
    """Check and claim the job's output, record and publish it; a known job is not sent again.

    The returned job carries the output it was given (``<stem> (2).mp4`` when the first
    choice belongs to another job or to a file kamado did not write).
    """
    target = queue or get_profile(job.profile, settings.profiles).queue
    with span(job.id, "submit.check"):
        job = check_submission(settings, Claims(registry), job)
    with span(job.id, "submit.record"):
        outcome, before = registry.record(job, queue=target, force=force, held=held)
    if outcome == "exists":
        return Submitted(job, outcome, before, None, target)
    if held:
        return Submitted(job, outcome, JobState.HELD, None, target)
    with span(job.id, "submit.publish"):
        task_id = publish(app, job, target)
    return Submitted(job, outcome, JobState.QUEUED, task_id, target)
