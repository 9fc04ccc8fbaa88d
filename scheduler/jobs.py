"""Reading and controlling jobs: `kamado status`, `cancel` and `retry` on the registry."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from scheduler.broker import BrokerState
from scheduler.errors import UnknownJob
from scheduler.routing import initial_queue
from worker.errors import BadInputError, KamadoError
from worker.jobs import JobState, now
from worker.profiles import QUEUE_CPU, QUEUE_GPU, get_profile
from worker.registry import JobRecord, Registry

if TYPE_CHECKING:
    from scheduler.deliver import Deliverer

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


def row(record: JobRecord, flags: list[str] | None = None) -> dict[str, Any]:
    """One job as `kamado status --json` prints it."""
    progress = record.progress
    created = record.created_at or record.job.submitted_at
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
        "backend": record.backend or (record.result or {}).get("backend"),
        "progress": 100.0
        if record.state is JobState.DONE
        else (progress.percent if progress else None),
        "fps": progress.fps if progress else None,
        "eta_s": progress.eta_s if progress and record.state in RUNNING else None,
        "error": record.error,
        "kind": record.kind,
        "flags": flags or [],
        "cancel_requested": record.cancel_requested,
        "created_at": created.isoformat(),
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
        "age_s": round((now() - created).total_seconds(), 1),
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
    return data


def listing(
    registry: Registry, state: BrokerState, *, states: list[JobState], limit: int
) -> list[dict[str, Any]]:
    """The newest jobs, optionally only those in the given states."""
    records = registry.list(limit=limit if not states else max(limit * 20, 2000))
    if states:
        records = [r for r in records if r.state in states][:limit]
    flags = state.flags([r.id for r in records])
    return [row(r, flags.get(r.id)) for r in records]


def cancel(registry: Registry, state: BrokerState, job_id: str) -> str:
    """Cancel a job; returns cancelled, cancelling (a running attempt stops), or the final state."""
    answer = registry.request_cancel(job_id)
    if not answer:
        raise UnknownJob(f"job {job_id}: no such job", job=job_id)
    if answer == "cancelled":
        state.remove(job_id, [QUEUE_GPU, QUEUE_CPU])
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
