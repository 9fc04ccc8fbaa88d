"""Why a queued job waits, in kamado's words, for every place a job is shown.

Either nobody serves its queue ("no hardware worker up; host agent vmhost: VM shutoff,
last started the VM at 2026-12-02 14:02 UTC") or it waits its turn ("queue position 3
in encode.cpu"). `kamado status` and `watch` compute it when they draw; Flower hears it
from the scheduler service (:class:`WaitingNotices`), as task events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from scheduler.queues import BrokerState
from worker.admin.task_events import send_waiting, sender_name
from worker.broker.heartbeat import HostHeartbeat
from worker.broker.presence import workers
from worker.broker.registry import Registry
from worker.profiles import QUEUE_CPU, QUEUE_GPU

if TYPE_CHECKING:
    from celery import Celery

# The waiting tasks per queue whose reason Flower hears each pass (the front of the queue).
NOTICE_LIMIT = 200


def host_context(hosts: list[HostHeartbeat]) -> str:
    """What the host agents say about the GPU VM, or that none is up."""
    if not hosts:
        return "no host agent is up to start the VM"
    said = []
    for host in hosts:
        words = f"host agent {host.name}: VM {host.vm_state}"
        if host.preflight_ok is False:
            words += ", preflight failed"
        at = f" at {host.last_action_at:%Y-%m-%d %H:%M} UTC" if host.last_action_at else ""
        action, _, why = host.last_action.partition(": ")
        if action == "start":
            words += f", last started the VM{at}" + (f" ({why})" if why else "")
        elif host.last_action:
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


class WaitingNotices:
    """Sends Flower each waiting task's reason, again only when that reason changes."""

    def __init__(self) -> None:
        self._told: dict[str, str] = {}

    def send(self, app: Celery, registry: Registry, state: BrokerState) -> dict[str, str]:
        """One pass over both queues; returns task id → reason of the notices sent."""
        tasks: dict[str, str] = {}
        pairs: list[tuple[str, str]] = []
        for queue in (QUEUE_GPU, QUEUE_CPU):
            for message in state.waiting(queue)[:NOTICE_LIMIT]:
                if message.task_id:
                    tasks[message.task_id] = message.job_id
                    pairs.append((message.job_id, queue))
        reasons = waiting_reasons(registry, state, pairs)
        now = {task: reasons[job] for task, job in tasks.items() if job in reasons}
        fresh = {task: why for task, why in now.items() if self._told.get(task) != why}
        send_waiting(app, sender_name("scheduler"), fresh)
        self._told = now  # forget tasks that left the queues
        return fresh
