"""The reconciler: no job stays in limbo.

A job the registry holds as queued or running, with no live lease and no message in any
queue (its worker was killed, its VM crashed, Redis lost it, publishing failed), is
published again; a job past the attempt limit fails with the reasons of its attempts.
The scheduler service runs a pass every ``jobs.reconcile_interval`` seconds; the one-box
client runs it while it waits.

A worker's take is not atomic: kombu BRPOPs the message off its queue and only then, in a
second round trip, records it in the ``unacked`` hash; the task takes the lease later
still, once a pool process runs it. A delivery younger than ``grace`` counts as a
message, and a job is republished only when a second look, ``recheck`` seconds later,
still finds it untouched with no message and no lease (a slow worker, a VM under
emulation, widens the first gap to a good part of a second).

A live job (worker/broker/live.py) in phase ``recording`` is never published again: a
live attempt follows it, or its message waits in the chosen worker's own queue, which
the reconciler does not read; the finish hook sends it on when nobody follows it. One
that nobody follows past its deadline (the programme's end plus ``[live]
finish_margin``) with no finish hook is held, as a live attempt that gives up holds it,
so `kamado status` says why and `kamado retry` can run it. ``waiting`` and ``abandoned``
jobs are held already; ``finished``, ``rejected`` and ``ordinary`` ones are reconciled
like any job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import Celery
from celery.utils.nodenames import worker_direct

from worker.broker.keys import queue_lists
from worker.broker.live import Phase, abandon, read_live
from worker.broker.publish import publish
from worker.broker.registry import JobRecord, Registry, job_id_of
from worker.jobs import JobState, now
from worker.profiles import QUEUE_CPU, QUEUE_GPU

__all__ = ["reconcile"]

log = logging.getLogger("kamado.reconcile")
# Seconds between the two looks at a job that seems lost.
RECHECK = 2.0
# Live phases in which the job is not the reconciler's to publish (see the docstring).
LIVE_LEFT_ALONE = (Phase.RECORDING, Phase.WAITING, Phase.ABANDONED)


@dataclass
class Pass:
    """What one reconciler pass did."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    checked: int = 0


def reconcile(
    app: Celery,
    registry: Registry,
    *,
    grace: float,
    queues: list[str] | None = None,
    recheck: float = RECHECK,
) -> Pass:
    """One pass over the active jobs; ``grace`` skips jobs touched in the last seconds."""
    result = Pass()
    queues = queues or [QUEUE_GPU, QUEUE_CPU]
    cutoff = now() - timedelta(seconds=grace)
    ids = registry.active_ids()
    result.checked = len(ids)
    suspects = _in_limbo(registry, ids, _with_messages(registry, queues, cutoff), cutoff, result)
    if not suspects:
        return result
    time.sleep(recheck)
    messages = _with_messages(registry, queues, cutoff)
    # A job touched between the looks is newer than the cutoff: _in_limbo skips it.
    for record in _in_limbo(registry, list(suspects), messages, cutoff, result).values():
        _settle(app, registry, record, result)
    return result


def _with_messages(registry: Registry, queues: list[str], cutoff: datetime) -> set[str]:
    """Jobs with a message waiting, or delivered since ``cutoff`` and not yet acknowledged
    (an older delivery without a lease is a dead worker's: kombu would restore it only
    after its visibility timeout, hours later)."""
    return registry.jobs_with_messages(queues) | registry.delivered_since(cutoff.timestamp())


def _in_limbo(
    registry: Registry, ids: list[str], with_messages: set[str], cutoff: datetime, result: Pass
) -> dict[str, JobRecord]:
    """The jobs of ``ids`` that are active, not held, untouched since ``cutoff``, with no
    live lease and no message in a queue or delivered, and not on the live path (one
    nobody followed past its deadline is held here, into ``result``)."""
    found = {}
    for job_id in ids:
        record = registry.get(job_id)
        if record is None or record.state.final or record.state is JobState.HELD:
            continue
        if registry.lease_alive(job_id) or job_id in with_messages:
            continue
        if record.updated_at and record.updated_at > cutoff:
            continue
        if record.job.live and _live_left_alone(registry, job_id, cutoff, result):
            continue
        found[job_id] = record
    return found


def _live_left_alone(registry: Registry, job_id: str, cutoff: datetime, result: Pass) -> bool:
    """True for a live job the reconciler must not publish; one in phase ``recording``
    that nobody follows past its deadline is held until the finish hook."""
    live = read_live(registry, job_id)
    if live is None or live.phase not in LIVE_LEFT_ALONE:
        return False
    if live.phase is Phase.RECORDING and live.deadline and live.deadline < cutoff.timestamp():
        if live.worker:  # a message still waiting for the chosen worker must not start it
            _drop_messages(registry, job_id, worker_direct(live.worker).name)
        reason = "no live attempt followed it by the programme's end plus [live] finish_margin"
        if abandon(registry, job_id, reason) == "wait" and registry.settle(
            job_id, JobState.HELD, reason
        ):
            result.held.append(job_id)
            log.warning("live job %s: %s; held until the finish hook", job_id, reason)
    return True


def _drop_messages(registry: Registry, job_id: str, queue: str) -> None:
    """Take the job's waiting messages off one queue."""
    client = registry.client
    for key in queue_lists([queue]):
        for raw in registry.call("read a queue", client.lrange, key, 0, -1):
            if job_id_of(raw) == job_id:
                registry.call("remove a message", client.lrem, key, 1, raw)


def _settle(app: Celery, registry: Registry, record: JobRecord, result: Pass) -> None:
    """Fail a job past its attempts, or publish it again."""
    job_id = record.id
    if record.attempts >= registry.max_attempts:
        reasons = "; ".join(
            f"attempt {r.number}: {r.error}" for r in registry.history(job_id) if r.error
        )
        message = f"{record.job.source}: gave up after {record.attempts} attempts ({reasons})"
        if registry.settle(job_id, JobState.FAILED, message):
            result.failed.append(job_id)
            log.warning("job %s failed: %s", job_id, message)
        return
    if registry.settle(job_id, JobState.QUEUED, record.error or ""):
        publish(app, record.job, record.queue or QUEUE_CPU)
        result.requeued.append(job_id)
        log.warning("job %s was in limbo (%s); published again", job_id, record.state.value)
