"""The encode task: decode the payload, hold the job's lease, run the plain pipeline.

Kept thin on purpose: the work is in worker/encode/pipeline.py (which knows nothing of Celery),
the lease in worker/runtime/lease.py, the registry in worker/broker/registry.py. This module maps
outcomes to registry states and Celery results: a duplicate delivery is dropped, an
input that fails the same way every time fails at once, a crash or a transient error is
retried up to the attempt limit.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, NoReturn

from celery import Celery, Task, states
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from celery.signals import worker_process_shutdown

from worker.admin.notify import Notifier
from worker.admin.task_events import (
    ended_fields,
    progress_fields,
    send_revoked,
    send_update,
)
from worker.backends import proof_reuse as probe_reuse
from worker.backends.capabilities import cached_probe, encode_hardware
from worker.broker.claims import Claims
from worker.broker.counters import failure_kind
from worker.broker.presence import record_speed
from worker.broker.registry import Acquired, Registry
from worker.encode.output_contract import check_task
from worker.encode.pipeline import Attempt, StageSource, encode_job
from worker.encode.source_removal import after_done, seen_source
from worker.errors import (
    AttemptCrashed,
    BackendUnavailable,
    BadInputError,
    EncodeError,
    EncodeErrorKind,
    JobCancelled,
    JobFailed,
    KamadoError,
    LeaseLost,
    OutputError,
    SourceError,
    StagingError,
    VerifyError,
)
from worker.jobs import ENCODE_TASK, Job, JobState
from worker.live.attempt import await_recording, live_feed, stop_live
from worker.live.feed import LiveFeed
from worker.profiles import Backend, get_profile
from worker.progress import Progress
from worker.runtime.lease import LeaseKeeper
from worker.runtime.prefetch import NextPrefetch, consumed_queues
from worker.settings.model import Settings
from worker.spans import mark, span

log = logging.getLogger("kamado.worker")

PROGRESS_STATE = "PROGRESS"
# ffmpeg failures that will repeat on every attempt: a broken input or a bad option.
PERMANENT_KINDS = {EncodeErrorKind.INPUT, EncodeErrorKind.OPTION, EncodeErrorKind.DISK}
HARDWARE_BACKENDS = {b.value for b in Backend if b.hardware}


def worker_backends(app: Celery, settings: Settings) -> list[Backend]:
    """The backends this worker may use: configured, or proven by the probe at start."""
    configured = settings.worker.backends
    if configured != "auto":
        return [Backend(b) for b in configured]
    proven = app.conf.get("kamado_backends")
    # kamado_probed_at is set only when the list came from kamado worker's own probe; an
    # owner that chose the list itself (the guest agent and its GPU guard) keeps it.
    probed_at = app.conf.get("kamado_probed_at")
    stored = probe_reuse.stored_probed_at(settings) if probed_at is not None else None
    stale = stored is not None and stored != probed_at
    if proven is None or stale:
        # None yet, or re-probed since (another pool child after a hardware failure)
        report = cached_probe(settings)
        proven = [b.value for b in report.proven]
        app.conf.kamado_backends = proven
        app.conf.kamado_probed_at = report.probed_at
    return [Backend(b) for b in proven]


def is_permanent(error: KamadoError) -> bool:
    """True when retrying cannot help: the same input fails the same way every time."""
    if isinstance(error, EncodeError):
        return error.kind in PERMANENT_KINDS
    if isinstance(error, StagingError):
        return not bool(getattr(error, "transient", False))
    return isinstance(
        error, SourceError | BadInputError | VerifyError | BackendUnavailable | OutputError
    )


def progress_meta(job: Job, progress: Progress) -> dict[str, Any]:
    """What Flower, `kamado status` and the one-box client read while a job runs."""
    return {"job_id": job.id, "source": job.source, **progress.model_dump(mode="json")}


class _Registries:
    """One registry connection per worker process (pool children must not share sockets)."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._by_pid: dict[int, Registry] = {}

    def get(self) -> Registry:
        pid = os.getpid()
        if pid not in self._by_pid:
            self._by_pid = {
                pid: Registry.connect(
                    str(self.app.conf.broker_url),
                    lease_ttl=self.settings.jobs.lease_ttl,
                    max_attempts=self.settings.jobs.max_attempts,
                )
            }
        return self._by_pid[pid]


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define kamado's tasks on ``app``, bound to ``settings``."""
    registries = _Registries(app, settings)
    notifier = Notifier(settings.notify)
    worker_process_shutdown.connect(lambda **_: notifier.close(5), weak=False)
    prefetch = NextPrefetch(settings, registries.get, lambda: consumed_queues(app, settings))
    worker_process_shutdown.connect(lambda **_: prefetch.close(), weak=False)

    @app.task(name=ENCODE_TASK, bind=True, throws=(JobFailed,), max_retries=None)
    def encode(self: Task[Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """Encode one job; the payload is a Job as JSON."""
        try:
            job = Job.from_payload(payload)
            get_profile(job.profile, settings.profiles)
        except KamadoError as e:
            log.warning("rejected a task: %s", e)
            raise JobFailed(str(e)) from None
        return run_attempt(
            self, app, settings, registries.get(), job, notifier, stage_source=prefetch.stage_in
        )


def admit(registry: Registry, job: Job, queue: str) -> None:
    """Record a task's job the registry does not know; refuse one that contradicts it.

    A task whose source, output or profile differ from the registry's job of that id is
    stale (the job was re-submitted since) or crafted: it is dropped, nothing touched.
    """
    known = registry.get(job.id)
    if known is None:  # sent by something other than kamado's submit
        registry.record(job, queue=queue)
        return
    was, sent = known.job, job
    if (was.source, was.output, was.profile) != (sent.source, sent.output, sent.profile):
        log.warning("job %s: dropped a task that does not match the registry's job", job.id)
        raise JobFailed(
            f"job {job.id}: the task's source, output or profile differ from the job the "
            f"registry holds ({was.source} → {was.output}); not run"
        )


def revoke(task: Task[Any, Any], app: Celery, worker: str, job: Job, when: str) -> NoReturn:
    """End a cancelled job's task as REVOKED, not FAILURE: cancelling is not failing."""
    task_id = str(task.request.id)
    task.update_state(task_id=task_id, state=states.REVOKED, meta={"job_id": job.id})
    send_revoked(app, worker, task_id, ended_fields(JobState.CANCELLED.value, when))
    raise Ignore()


def announce(registry: Registry, notifier: Notifier, job_id: str) -> None:
    """Tell the configured webhook that a job reached a final state (never blocks)."""
    try:
        record = registry.get(job_id)
    except KamadoError as e:
        log.warning("job %s: not announced: %s", job_id, e)
        return
    if record is not None and record.state.final:
        notifier.notify(record)


def run_attempt(
    task: Task[Any, Any],
    app: Celery,
    settings: Settings,
    registry: Registry,
    job: Job,
    notifier: Notifier,
    stage_source: StageSource | None = None,
) -> dict[str, Any]:
    """One delivery of a job: take the lease or drop the delivery, encode, record the end."""
    worker = task.request.hostname or socket.gethostname()
    attempt_id = secrets.token_hex(6)
    mark(job.id, "task.started")
    with span(job.id, "task.admit"):
        admit(registry, job, get_profile(job.profile, settings.profiles).queue)
    with span(job.id, "task.acquire"):
        got = registry.acquire(job.id, attempt_id, worker)
    if got.status == "held":
        registry.end_duplicate(job.id, attempt_id, worker, f"lease held by attempt {got.detail}")
        log.info("job %s: dropped a duplicate delivery (lease held)", job.id)
        return {"job_id": job.id, "skipped": "duplicate delivery: another attempt holds the lease"}
    if got.status in ("final", "cancelled", "exhausted", "on_hold"):
        return not_run(task, app, registry, notifier, job, (worker, got))

    # The keeper thread publishes progress: Celery's request context is thread-local, so
    # take the task id and worker name here and address the backend and events directly.
    task_id = str(task.request.id)

    def publish(progress: Progress) -> None:
        task.update_state(task_id=task_id, state=PROGRESS_STATE, meta=progress_meta(job, progress))
        send_update(app, worker, task_id, progress_fields(progress))

    def ended(state: str, reason: str) -> None:
        send_update(app, worker, task_id, ended_fields(state, reason))

    claims = Claims(registry)
    feed = live_feed(registry, job)  # None: an ordinary attempt (the file is complete)
    with LeaseKeeper(registry, job.id, attempt_id, publish=publish) as keeper:
        try:
            # The worker's own check before any file is touched: a crafted or stale task
            # whose source or output breaks the contract fails here, permanently.
            if feed is not None:
                await_recording(settings, job, feed)
            with span(job.id, "task.check_task"):
                job, replace = check_task(settings, claims, job)
            seen = seen_source(settings, job)  # what encode.delete_source may delete later
            with span(job.id, "task.backends"):
                backends = worker_backends(app, settings)
            attempt = Attempt(
                settings=settings,
                backends=backends,
                on_progress=keeper.report,
                check_cancel=keeper.check,
                before_commit=lambda _temp: keeper.guard_commit(),
                worker=worker,
                attempt_id=attempt_id,
                stage_source=stage_source,
                claims=claims,
                replace_output=replace,
                on_committed=claims.mark_written,
                hardware=lambda backend: encode_hardware(settings, backend),
                live=feed,
            )
            with span(job.id, "task.encode_job"):
                result = encode_job(job, attempt).model_dump(mode="json")
        except LeaseLost as e:
            log.warning("%s; its output was not committed", e)
            return {"job_id": job.id, "skipped": str(e)}
        except JobCancelled as e:
            registry.finish(job.id, attempt_id, JobState.CANCELLED, error="cancelled")
            announce(registry, notifier, job.id)
            log.info("%s", e)
            revoke(task, app, worker, job, "while it ran")
        except SoftTimeLimitExceeded:
            limit = settings.encode.soft_time_limit
            message = (
                f"{job.source}: ran past encode.soft_time_limit ({limit} s); ffmpeg was stopped"
            )
            registry.finish(job.id, attempt_id, JobState.FAILED, error=message, kind="timeout")
            announce(registry, notifier, job.id)
            ended(JobState.FAILED.value, message)
            raise JobFailed(message) from None
        except KamadoError as e:
            return ended_badly(
                task, settings, (registry, notifier, ended), job, (attempt_id, got.attempt), feed, e
            )
        except Exception as e:  # a bug or an OS error nobody converted: end the attempt now
            log.exception("job %s: attempt %s crashed", job.id, attempt_id)
            crashed = AttemptCrashed(
                f"{job.source}: the attempt ended on an unexpected {type(e).__name__}: {e}"
            )
            return ended_badly(
                task, settings, (registry, notifier, ended), job, (attempt_id, got.attempt), feed,
                crashed,
            )  # fmt: skip
    with span(job.id, "task.finish"):
        done = registry.finish(
            job.id, attempt_id, JobState.DONE, result=result, backend=result.get("backend")
        )
    if not done:
        log.warning("job %s: lease lost right after the commit; the output is in place", job.id)
    result = after_done(
        settings, job, seen, result, done=done, flags=lambda: registry.flags(job.id)
    )
    log.info("job %s done: %s (%s)", job.id, result["output"], result["backend"])
    with span(job.id, "task.announce"):
        announce(registry, notifier, job.id)
        note_speed(registry, worker, result, job.profile, live=feed is not None)
    return result


def ended_badly(
    task: Task[Any, Any],
    settings: Settings,
    where: tuple[Registry, Notifier, Callable[[str, str], None]],
    job: Job,
    attempt: tuple[str, int],
    feed: LiveFeed | None,
    error: KamadoError,
) -> dict[str, Any]:
    """An attempt that raised: a live one falls back to an ordinary job (never failing it),
    any other fails or is retried (:func:`fail_or_retry`)."""
    registry, notifier, ended = where
    if feed is not None:
        return stop_live(task.app, settings, registry, job, attempt[0], error)
    return fail_or_retry(task, settings, registry, job, attempt, error, notifier, ended)


def note_speed(
    registry: Registry,
    worker: str,
    result: dict[str, Any],
    profile: str | None = None,
    *,
    live: bool = False,
) -> None:
    """Record the backend's measured speed for routing (and, with ``profile``, for that
    profile: what live jobs are routed by); never fail a done job over it. A live encode
    ran at the recording's pace, not the worker's: it is not recorded."""
    if live:
        return
    seconds = float(result.get("encode_seconds") or 0)
    duration = float(result.get("source_duration_s") or result.get("duration_s") or 0)
    realtime = duration / seconds if seconds > 0 and duration > 0 else None
    try:
        backend = str(result["backend"])
        record_speed(registry, worker, backend, result.get("average_fps"), realtime)
        if profile is not None:
            record_speed(
                registry, worker, backend, result.get("average_fps"), realtime, profile=profile
            )
    except KamadoError as e:
        log.warning("could not record the encode speed: %s", e)


def not_run(
    task: Task[Any, Any],
    app: Celery,
    registry: Registry,
    notifier: Notifier,
    job: Job,
    taken: tuple[str, Acquired],
) -> dict[str, Any]:
    """A delivery of a job that must not run: final, cancelled, held, or out of attempts."""
    worker, got = taken
    if got.status == "on_hold":  # a stale message (a live job waiting for its finish hook)
        log.info("job %s: dropped a delivery of a held job", job.id)
        return {"job_id": job.id, "skipped": "the job is held; `kamado retry` releases it"}
    if got.status in ("final", "cancelled"):
        record = registry.get(job.id)
        log.info("job %s: nothing to do (%s)", job.id, got.detail or got.status)
        if record and record.state is JobState.DONE and record.result:
            return record.result
        if got.status == "cancelled" or (record and record.state is JobState.CANCELLED):
            revoke(task, app, worker, job, "cancelled before it ran")
        raise JobFailed(f"job {job.id} is {record.state.value if record else got.status}")
    if got.status == "exhausted":
        reasons = "; ".join(
            f"attempt {r.number}: {r.error}" for r in registry.history(job.id) if r.error
        )
        message = f"{job.source}: gave up after {got.detail} attempts ({reasons or 'no reason'})"
        registry.settle(job.id, JobState.FAILED, message)
        announce(registry, notifier, job.id)
        send_update(app, worker, str(task.request.id), ended_fields("failed", message))
        raise JobFailed(message)
    raise JobFailed(f"job {job.id}: {got.status}")


def fail_or_retry(
    task: Task[Any, Any],
    settings: Settings,
    registry: Registry,
    job: Job,
    attempt: tuple[str, int],
    error: KamadoError,
    notifier: Notifier,
    ended: Callable[[str, str], None] = lambda _s, _r: None,
) -> dict[str, Any]:
    """Fail at once for permanent errors; otherwise requeue until the attempt limit."""
    attempt_id, number = attempt
    kind = failure_kind(error)
    backend = getattr(error, "backend", None)
    if is_permanent(error) or number >= settings.jobs.max_attempts:
        registry.finish(
            job.id, attempt_id, JobState.FAILED, error=str(error), kind=kind, backend=backend
        )
        log.warning("job %s failed: %s", job.id, error)
        announce(registry, notifier, job.id)
        ended(JobState.FAILED.value, str(error))
        raise JobFailed(str(error))
    registry.finish(
        job.id, attempt_id, JobState.QUEUED, error=str(error), kind=kind, backend=backend
    )
    if task.app.conf.get("kamado_probed_at") is not None and backend in HARDWARE_BACKENDS:
        # A reused probe result must not keep claiming a backend that now fails.
        fresh = probe_reuse.after_hardware_failure(settings, str(kind))
        if fresh is not None:
            task.app.conf.kamado_backends = [b.value for b in fresh.proven]
            task.app.conf.kamado_probed_at = fresh.probed_at
    delay = settings.jobs.retry_delay * number
    log.warning("job %s attempt %d failed (%s); retrying in %g s", job.id, number, error, delay)
    raise task.retry(countdown=delay, exc=JobFailed(str(error)))
