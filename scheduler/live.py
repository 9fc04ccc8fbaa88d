"""Live jobs on the scheduler's side: the start hook picks a worker, the finish hook tells it.

A recorder's start hook (`kamado hook epgstation --start`) submits a job with ``live =
true``. :func:`submit_live` records it and, when a live worker has proven itself fast
enough for the profile (``[live] margin`` × real time), sends it to that worker's own
queue in phase ``recording``; otherwise the job is held in phase ``waiting`` and runs as
an ordinary job after the finish hook. The finish hook for the same recording (the same
job id) goes through :func:`finish_live`: one atomic step of the live phase
(:func:`worker.broker.live.finish_recording`, whose table is the design) and, when no live
attempt holds the job any more, the job is sent on as an ordinary one, held or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from celery.utils.nodenames import worker_direct

from scheduler.submission import FAILED_RECORDING, Submission, damage
from worker.broker.live import After, Phase, finish_recording, open_live, phase_of, read_live
from worker.broker.presence import profile_realtime, workers
from worker.broker.publish import publish, publish_to_worker
from worker.broker.registry import JobRecord, Registry
from worker.errors import BackendUnavailable
from worker.jobs import Job, JobState
from worker.profiles import QUEUE_CPU, Backend, Profile, choose_backend, get_profile
from worker.settings.model import Settings
from worker.submit import Submitted, submit_job

if TYPE_CHECKING:
    from scheduler.delivery.deliverer import Deliverer

__all__ = [
    "LiveChoice",
    "LiveSubmitted",
    "choose_live_worker",
    "direct_queue",
    "finish_live",
    "submit_live",
    "tell_skipped",
]


@dataclass(frozen=True)
class LiveSubmitted(Submitted):
    """What a live job's hook did: ``outcome`` is the hook's word ("live: recording",
    "live: waiting", "live: following", "live: stopping", "released", "released: held",
    "cancelled"), ``detail`` says who follows it or why not."""

    detail: str = ""


@dataclass(frozen=True)
class LiveChoice:
    """The worker a live job goes to, with its measured speed for the profile."""

    hostname: str
    realtime: float
    busy: bool = False


def direct_queue(hostname: str) -> str:
    """The name of a worker's own queue (Celery's worker_direct: ``<node name>.dq2``)."""
    return str(worker_direct(hostname).name)


def runs_on(profile: Profile) -> set[str]:
    """The queues a job of the profile may be run from: its own, and encode.cpu when it
    accepts the software backend (routing may send it there)."""
    return {profile.queue} | ({QUEUE_CPU} if not profile.hardware_only else set())


def _proven(names: list[str]) -> list[Backend]:
    return [Backend(n) for n in names if n in Backend._value2member_map_]


def _busy(registry: Registry, hostname: str, current_job: str | None) -> bool:
    """True when the worker runs a job or has one waiting in its own queue."""
    return current_job is not None or registry.waiting_count([direct_queue(hostname)]) > 0


def choose_live_worker(registry: Registry, settings: Settings, profile: str) -> LiveChoice | None:
    """The worker to follow a recording of ``profile``: among alive workers that serve the
    profile, those whose measured speed for it (with the backend they would choose) is at
    least ``[live] margin`` × real time; an idle one before a busy one, then the fastest.
    None when no worker has proven that speed."""
    wanted = get_profile(profile, settings.profiles)
    queues = runs_on(wanted)
    found: list[LiveChoice] = []
    for beat in workers(registry):
        if not queues & set(beat.queues):
            continue
        try:
            backend = choose_backend(wanted, _proven([b.backend for b in beat.backends]))
        except BackendUnavailable:
            continue
        speed = profile_realtime(registry, beat.hostname, backend.value, profile)
        if speed is None or speed < settings.live.margin:
            continue
        found.append(
            LiveChoice(beat.hostname, speed, _busy(registry, beat.hostname, beat.current_job))
        )
    return min(found, key=lambda c: (c.busy, -c.realtime, c.hostname), default=None)


def waiting_reason(settings: Settings, profile: str) -> str:
    """Why a live job waits for the finish hook: no worker is fast enough."""
    return f"no worker measured at ≥ {settings.live.margin:g}× real time for {profile}"


def deadline_of(job: Job, settings: Settings) -> float | None:
    """When a live attempt gives up waiting for the finish hook: the programme's end plus
    ``[live] finish_margin`` (epoch seconds), or None when the recorder gave no end."""
    end = job.recording.end if job.recording is not None else None
    return end.timestamp() + settings.live.finish_margin if end is not None else None


def _existing(record: JobRecord) -> Submitted:
    return Submitted(record.job, "exists", record.state, None, record.queue)


def submit_live(deliverer: Deliverer, sub: Submission, queue: str) -> Submitted:
    """Record a start hook's live job and send it to a fast enough worker, else hold it
    until the finish hook; ``queue`` is where it goes as an ordinary job. A job the
    registry knows (a repeated start hook, a job already done) is left as it is."""
    registry, settings = deliverer.registry, deliverer.settings
    known = registry.get(sub.job.id)
    if known is not None:
        return _existing(known)
    choice = None
    if settings.live.enabled and not sub.held:
        choice = choose_live_worker(registry, settings, sub.job.profile)
    # Recorded held: the output claims are checked as for any job, and nothing is sent
    # until the live phase says who runs it.
    done = submit_job(deliverer.app, registry, settings, sub.job, queue=queue, held=True)
    if done.outcome == "exists":
        return done
    job = done.job
    if choice is None:
        if not settings.live.enabled:
            reason = "live jobs are off ([live] enabled = false)"
        elif sub.held:
            reason = "held: " + "; ".join(sub.flags)
        else:
            reason = waiting_reason(settings, job.profile)
        open_live(registry, job.id, Phase.WAITING, reason=reason)
        return LiveSubmitted(job, "live: waiting", JobState.HELD, None, queue, detail=reason)
    open_live(
        registry, job.id, Phase.RECORDING, worker=choice.hostname,
        deadline=deadline_of(job, settings),
    )  # fmt: skip
    # Queued before it is published; if publishing fails, the finish hook still sends it
    # on as an ordinary job (the reconciler leaves a recording live job alone).
    registry.settle(job.id, JobState.QUEUED)
    task_id = publish_to_worker(deliverer.app, job, choice.hostname)
    detail = f"{choice.hostname} ({choice.realtime:g}× real time)"
    return LiveSubmitted(job, "live: recording", JobState.QUEUED, task_id, queue, detail=detail)


def reject_reason(sub: Submission, settings: Settings) -> str:
    """Why the finish hook turns the live attempt down ('' for a good recording)."""
    recording = sub.job.recording
    if recording is not None and recording.failed:
        return FAILED_RECORDING
    return "; ".join(damage(recording, settings.scheduler.hold))


def finish_live(deliverer: Deliverer, sub: Submission, queue: str) -> Submitted | None:
    """A finish hook's submission for a live job: tell it; None when the job was never
    live, or its live path is over (then it is submitted as any job: "exists")."""
    after: After = "hold" if sub.held else "queue"
    return _finish(deliverer, sub.job.id, reject_reason(sub, deliverer.settings), after, queue)


def tell_skipped(deliverer: Deliverer, job_id: str) -> Submitted | None:
    """A finish hook config skips (a failed recording): a live job of it is cancelled."""
    return _finish(deliverer, job_id, FAILED_RECORDING, "cancel", None)


def _finish(
    deliverer: Deliverer, job_id: str, reject: str, after: After, queue: str | None
) -> Submitted | None:
    registry = deliverer.registry
    if phase_of(registry, job_id) is None:
        return None
    answer = finish_recording(registry, job_id, reject=reject, after=after)
    record = registry.get(job_id)
    if answer == "none" or record is None:
        return None
    live = read_live(registry, job_id)
    worker = live.worker if live is not None else ""
    if answer == "following":
        detail = f"{worker} reads the recording to its end"
        return LiveSubmitted(record.job, "live: following", record.state, None, record.queue,
                             detail=detail)  # fmt: skip
    if answer == "stopping":
        detail = f"{worker} stops ({reject}), then the job is {_after_words(after)}"
        return LiveSubmitted(record.job, "live: stopping", record.state, None, record.queue,
                             detail=detail)  # fmt: skip
    return _release(deliverer, record, worker, after, queue or record.queue)


def _after_words(after: After) -> str:
    return {"queue": "queued", "hold": "held", "cancel": "cancelled"}[after]


def _release(
    deliverer: Deliverer, record: JobRecord, worker: str, after: After, queue: str
) -> Submitted:
    """No live attempt holds the job: queue it as an ordinary job, hold or cancel it."""
    registry, job_id = deliverer.registry, record.id
    if worker:  # the chosen worker never took it: its message must not start it later
        deliverer.state.remove(job_id, [direct_queue(worker)])
    if after == "cancel":
        answer = registry.request_cancel(job_id)  # cancelled, or cancelling if just taken
        state = JobState.CANCELLED if answer == "cancelled" else record.state
        why = "a failed recording (scheduler.hold.failed_recordings)"
        return LiveSubmitted(record.job, "cancelled", state, None, queue, detail=why)
    if after == "hold":
        registry.settle(job_id, JobState.HELD)
        return LiveSubmitted(record.job, "released: held", JobState.HELD, None, queue,
                             detail="held (scheduler.hold)")  # fmt: skip
    if not registry.settle(job_id, JobState.QUEUED):
        now = registry.get(job_id) or record
        return LiveSubmitted(now.job, "released", now.state, None, queue,
                             detail=f"already {now.state.value}")  # fmt: skip
    deliverer.state.point_at(job_id, queue)
    task_id = publish(deliverer.app, record.job, queue)
    return LiveSubmitted(record.job, "released", JobState.QUEUED, task_id, queue, detail=queue)
