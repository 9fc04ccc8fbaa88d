"""Publishing a job's Celery message to a capability queue (after the registry records it).

:mod:`worker.submit` records then publishes; the reconciler publishes again a job whose
message was lost.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from celery import Celery
from celery.utils.nodenames import worker_direct
from kombu import Queue

from worker.errors import BrokerError
from worker.jobs import ENCODE_TASK, Job

__all__ = ["publish", "publish_to_worker", "task_id_for"]


def task_id_for(job: Job) -> str:
    """A Celery task id that starts with the job id, so Flower shows which job it is."""
    return f"{job.id}-{secrets.token_hex(4)}"


def _send(app: Celery, job: Job, queue: str | Queue, where: str) -> str:
    task_id = task_id_for(job)
    try:
        app.send_task(
            ENCODE_TASK,
            args=[job.model_dump(mode="json")],
            task_id=task_id,
            queue=cast(Any, queue),  # a name or a kombu Queue: celery takes both
            priority=job.priority,
        )
    except Exception as e:  # kombu/redis raise many types; all mean the broker is away
        raise BrokerError(f"cannot publish job {job.id} to {where}: {e}") from e
    return task_id


def publish(app: Celery, job: Job, queue: str) -> str:
    """Send the job's message to a capability queue; returns the task id."""
    return _send(app, job, queue, queue)


def publish_to_worker(app: Celery, job: Job, hostname: str) -> str:
    """Send the job's message to one worker's own queue (its Celery node name, as in its
    heartbeat); returns the task id. Used for live jobs, which need a fast enough worker."""
    return _send(app, job, worker_direct(hostname), f"worker {hostname}")
