"""Why a queued job waits, in kamado's words, for every place a job is shown.

Either nobody serves its queue ("no hardware worker up; host agent vmhost: VM shut off,
last started the VM at 14:02") or it waits its turn ("queue position 3 in encode.cpu").
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.broker import BrokerState
from worker.heartbeat import HostHeartbeat
from worker.presence import workers
from worker.profiles import QUEUE_GPU
from worker.registry import Registry


def host_context(hosts: list[HostHeartbeat]) -> str:
    """What the host agents say about the GPU VM, or that none is up."""
    if not hosts:
        return "no host agent is up to start the VM"
    said = []
    for host in hosts:
        words = f"host agent {host.name}: VM {host.vm_state}"
        if host.preflight_ok is False:
            words += ", preflight failed"
        if host.last_action:
            at = f" at {host.last_action_at:%Y-%m-%d %H:%M} UTC" if host.last_action_at else ""
            words += f", last {host.last_action}{at}"
        said.append(words)
    return "; ".join(said)


def unserved_reason(queue: str, hosts: list[HostHeartbeat]) -> str:
    """Why nobody takes work from ``queue`` (no live worker heartbeat lists it)."""
    if queue == QUEUE_GPU:
        return f"no hardware worker up; {host_context(hosts)}"
    return f"no live worker consumes {queue}"


def waiting_reasons(
    registry: Registry, state: BrokerState, queued: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """job id → why it waits, for these (job id, queue) pairs of queued jobs."""
    pairs = list(queued)
    if not pairs:
        return {}
    served = {q for beat in workers(registry) for q in beat.queues}
    hosts: list[HostHeartbeat] | None = None
    order: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    for job_id, queue in pairs:
        if queue and queue not in served:
            if hosts is None:
                hosts = state.hosts()
            reasons[job_id] = unserved_reason(queue, hosts)
            continue
        if queue not in order:
            order[queue] = [m.job_id for m in state.waiting(queue)] if queue else []
        if job_id in order[queue]:
            reasons[job_id] = f"queue position {order[queue].index(job_id) + 1} in {queue}"
        else:
            reasons[job_id] = f"delivered to a worker of {queue}, not started yet"
    return reasons
