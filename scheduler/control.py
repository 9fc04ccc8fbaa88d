"""Reading and controlling jobs: `kamado status`, `cancel` and `retry` on the registry."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scheduler.errors import UnknownJob
from scheduler.queues import BrokerState
from scheduler.routing import initial_queue
from scheduler.waiting import waiting_reasons
from worker.admin.task_events import ended_fields, send_revoked, sender_name
from worker.broker.live import LiveState, Phase, read_live
from worker.broker.registry import JobRecord, Registry
from worker.errors import BadInputError, KamadoError
from worker.jobs import JobState, now
from worker.profiles import QUEUE_CPU, QUEUE_GPU, get_profile

if TYPE_CHECKING:
    from celery import Celery

    from scheduler.delivery.deliverer import Deliverer

HEX = re.compile(r"^[0-9a-f]{1,20}$")
RUNNING = (JobState.STAGING, JobState.ENCODING, JobState.VERIFYING)


def resolve(registry: Registry, state: BrokerState, text: str) -> str:
    """The full job id for an id or a unique prefix of one."""
    prefix = text.strip().lower()
    if not HEX.match(prefix):
        raise UnknownJob(f"job {text!r}: a job id is up to 20 hex digits", job=text)
    if len(prefix) == 20:
        if registry.get(prefix) is None:
            raise UnknownJob(f"job {prefix}: no such job", job=text)
        return prefix
    matches = state.ids_with_prefix(prefix)
    if not matches:
        raise UnknownJob(f"job {prefix}: no job id starts with it", job=text)
    if len(matches) > 1:
        raise UnknownJob(
            f"job {prefix}: ambiguous, {len(matches)} jobs start with it "
            f"({', '.join(sorted(matches)[:3])}, …); give more digits",
            job=text,
        )
    return matches[0]


def worker_host(worker: str | None) -> str | None:
    """The worker as an admin knows it: its host for Celery's default ``celery@host`` name."""
    if not worker:
        return None
    name, at, host = worker.partition("@")
    return host if at and name == "celery" and host else worker


def _outcome(record: JobRecord) -> dict[str, Any]:
    """A done job's size, video length, encode time and speed (× realtime)."""
    result = record.result or {}
    video = result.get("duration_s")
    took = result.get("encode_seconds")
    return {
        "size_bytes": result.get("size_bytes"),
        "duration_s": video,
        "encode_s": took,
        "realtime": round(float(video) / float(took), 2) if video and took else None,
        "epgstation_video_file_id": result.get("epgstation_video_file_id"),
    }


def row(record: JobRecord, flags: list[str] | None = None) -> dict[str, Any]:
    """One job as `kamado status --json` prints it."""
    progress = record.progress
    created = record.created_at or record.job.submitted_at
    queued = record.queued_at or created
    running = record.state in RUNNING
    done = record.state is JobState.DONE
    outcome = _outcome(record) if done else {}
    data: dict[str, Any] = {
        "id": record.id,
        "state": record.state.value,
        "attempts": record.attempts,
        "source": record.job.source,
        "output": record.job.output,
        "profile": record.job.profile,
        "priority": record.job.priority,
        "queue": record.queue,
        "worker": record.worker,
        "worker_host": worker_host(record.worker),
        "backend": record.backend or (record.result or {}).get("backend"),
        "progress": 100.0 if done else (progress.percent if progress and running else None),
        # Only a running job has a live speed; a done one its average; others none.
        "fps": (record.result or {}).get("average_fps")
        if done
        else (progress.fps if progress and running else None),
        "eta_s": progress.eta_s if progress and running else None,
        **outcome,
        "waiting": None,
        "live": None,
        "error": record.error,
        "kind": record.kind,
        "flags": flags or [],
        "cancel_requested": record.cancel_requested,
        "created_at": created.isoformat(),
        "queued_at": queued.isoformat(),
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
        "age_s": round((now() - queued).total_seconds(), 1),
    }
    if record.job.recording is not None:
        data["recording"] = record.job.recording.model_dump(mode="json", exclude_none=True)
    return data


def detail(registry: Registry, state: BrokerState, job_id: str) -> dict[str, Any]:
    """One job with its whole history (every attempt and its error)."""
    record = registry.get(job_id, with_history=True)
    if record is None:
        raise UnknownJob(f"job {job_id}: no such job", job=job_id)
    data = row(record, state.flags([job_id]).get(job_id))
    data["history"] = [a.model_dump(mode="json") for a in record.history]
    _add_waiting(registry, state, [data])
    _add_live(registry, [record], [data])
    return data


def live_fields(live: LiveState) -> dict[str, Any]:
    """A live job's phase, its worker and its lag behind the recording, as plain data."""
    return {
        "phase": live.phase.value,
        "worker": live.worker or None,
        "reason": live.reason or None,
        "after": live.after,
        "deadline": live.deadline,
        "lag_s": live.lag_s,
        "read_bytes": live.read_bytes,
        "file_bytes": live.file_bytes,
        "updated_at": live.updated_at,
    }


def _add_live(registry: Registry, records: list[JobRecord], rows: list[dict[str, Any]]) -> None:
    """Set each live job's ``live`` (its phase and lag; one read per live job only)."""
    for record, item in zip(records, rows, strict=True):
        if record.job.live and (live := read_live(registry, record.id)) is not None:
            item["live"] = live_fields(live)
            if live.phase is Phase.RECORDING and record.state is JobState.QUEUED:
                # its message is in the chosen worker's own queue, not a capability queue
                item["waiting"] = f"sent to {live.worker}'s own queue (a live job)"


def _add_waiting(registry: Registry, state: BrokerState, rows: list[dict[str, Any]]) -> None:
    """Set each queued row's ``waiting``: why it waits (nobody serves it, or its turn)."""
    queued = [(r["id"], r["queue"]) for r in rows if r["state"] == JobState.QUEUED.value]
    reasons = waiting_reasons(registry, state, queued)
    for item in rows:
        item["waiting"] = reasons.get(item["id"], item.get("waiting"))


def listing(
    registry: Registry, state: BrokerState, *, states: list[JobState], limit: int
) -> list[dict[str, Any]]:
    """The newest jobs, optionally only those in the given states."""
    records = registry.list(limit=limit if not states else max(limit * 20, 2000))
    if states:
        records = [r for r in records if r.state in states][:limit]
    flags = state.flags([r.id for r in records])
    rows = [row(r, flags.get(r.id)) for r in records]
    _add_waiting(registry, state, rows)
    _add_live(registry, records, rows)
    return rows


def cancel(registry: Registry, state: BrokerState, job_id: str, app: Celery | None = None) -> str:
    """Cancel a job; returns cancelled, cancelling (a running attempt stops), or the final state.

    The messages of a waiting job are dropped; with ``app``, Flower hears that their tasks
    are revoked (they would otherwise stay PENDING there forever).
    """
    answer = registry.request_cancel(job_id)
    if not answer:
        raise UnknownJob(f"job {job_id}: no such job", job=job_id)
    if answer == "cancelled":
        removed = state.remove_messages(job_id, [QUEUE_GPU, QUEUE_CPU])
        if app is not None:
            sender = sender_name("scheduler")
            fields = ended_fields(JobState.CANCELLED.value, "while it waited")
            for message in removed:
                if message.task_id:
                    send_revoked(app, sender, message.task_id, fields)
    return answer


def retry(deliverer: Deliverer, job_id: str, *, force: bool = False) -> str:
    """Run a failed, cancelled or held job again (a done one only with ``force``); its queue."""
    from worker.submit import submit_job

    registry = deliverer.registry
    record = registry.get(job_id)
    if record is None:
        raise UnknownJob(f"job {job_id}: no such job", job=job_id)
    if record.state in RUNNING or record.state is JobState.QUEUED:
        raise BadInputError(f"job {job_id} is {record.state.value}; there is nothing to retry")
    if record.state is JobState.DONE and not force:
        raise BadInputError(
            f"job {job_id} is done ({record.job.output}); use --force to encode it again"
        )
    if record.state is JobState.HELD:
        # Held jobs are not final; cancelling makes the forced re-record below a reset.
        registry.request_cancel(job_id)
    profile = get_profile(record.job.profile, deliverer.settings.profiles)
    queue = initial_queue(profile, deliverer.cluster())
    done = submit_job(
        deliverer.app, registry, deliverer.settings, record.job, queue=queue, force=True
    )
    if done.outcome == "exists":
        raise KamadoError(f"job {job_id} changed while retrying ({done.state.value}); try again")
    return done.queue


def _age(at: datetime | None) -> float | None:
    return round((datetime.now(UTC) - at).total_seconds(), 1) if at else None


def presence(deliverer: Deliverer) -> dict[str, Any]:
    """Workers and host agents with live heartbeats, as plain data."""
    from worker.broker.presence import workers

    return {
        "workers": [
            {
                "hostname": w.hostname,
                "queues": w.queues,
                "backends": [b.model_dump(mode="json") for b in w.backends],
                "problems": [p.model_dump(mode="json") for p in w.problems],
                "current_job": w.current_job,
                "captions": w.captions.model_dump(mode="json") if w.captions else None,
                "heartbeat_age_s": _age(w.updated_at),
            }
            for w in workers(deliverer.registry)
        ],
        "hosts": [
            {
                "name": h.name,
                "vm_state": h.vm_state,
                "last_action": h.last_action,
                "preflight_ok": h.preflight_ok,
                "heartbeat_age_s": _age(h.updated_at),
            }
            for h in deliverer.state.hosts()
        ],
    }
