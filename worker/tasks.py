"""The encode task: decode the payload, run the plain pipeline, report progress, map errors.

Kept thin on purpose: all the work is in worker/encode.py, which knows nothing of Celery.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from worker.capabilities import cached_probe
from worker.encode import Attempt, encode_job
from worker.errors import JobFailed, KamadoError
from worker.jobs import ENCODE_TASK, Job
from worker.profiles import Backend
from worker.progress import Progress
from worker.settings import Settings

log = logging.getLogger("kamado.worker")

PROGRESS_STATE = "PROGRESS"
PROGRESS_EVENT = "task-progress"


def worker_backends(app: Celery, settings: Settings) -> list[Backend]:
    """The backends this worker may use: configured, or proven by the probe at start."""
    configured = settings.worker.backends
    if configured != "auto":
        return [Backend(b) for b in configured]
    proven = app.conf.get("kamado_backends")
    if proven is None:
        proven = [b.value for b in cached_probe(settings).proven]
        app.conf.kamado_backends = proven
    return [Backend(b) for b in proven]


def progress_meta(job: Job, progress: Progress) -> dict[str, Any]:
    """What Flower, `kamado status` and the one-box client read while a job runs."""
    return {"job_id": job.id, "source": job.source, **progress.model_dump(mode="json")}


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define kamado's tasks on ``app``, bound to ``settings``."""

    @app.task(name=ENCODE_TASK, bind=True, throws=(JobFailed,))
    def encode(self: Task[Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """Encode one job; the payload is a Job as JSON."""
        try:
            job = Job.from_payload(payload)
            result = _run(self, job)
        except KamadoError as e:
            log.warning("job failed: %s", e)
            raise JobFailed(str(e)) from None
        except SoftTimeLimitExceeded:
            limit = settings.encode.soft_time_limit
            log.warning("job ran past the soft time limit (%s s); ffmpeg was stopped", limit)
            raise JobFailed(
                f"{payload.get('source', 'job')}: ran past encode.soft_time_limit ({limit} s); "
                "ffmpeg was stopped"
            ) from None
        log.info("job %s done: %s (%s)", job.id, result["output"], result["backend"])
        return result

    def _run(task: Task[Any, Any], job: Job) -> dict[str, Any]:
        def on_progress(progress: Progress) -> None:
            meta = progress_meta(job, progress)
            task.update_state(state=PROGRESS_STATE, meta=meta)
            task.send_event(PROGRESS_EVENT, **meta)

        attempt = Attempt(
            settings=settings,
            backends=worker_backends(app, settings),
            on_progress=on_progress,
            worker=task.request.hostname or socket.gethostname(),
        )
        return encode_job(job, attempt).model_dump(mode="json")
