"""Queues that hold work no live worker consumes, and why: what the scheduler warns about,
what `kamado status` says a waiting job waits for, and what `kamado doctor` reports.

A hardware-only profile (h264-intel, the example's NHK rule) never runs on the CPU, so
its jobs wait in ``encode.gpu`` until a worker with a proven hardware backend serves it.
When none does, that wait has a reason an operator must hear about.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.queues import BrokerState
from worker.broker.heartbeat import HostHeartbeat
from worker.broker.presence import workers
from worker.broker.registry import Registry
from worker.profiles import QUEUE_CPU, QUEUE_GPU

log = logging.getLogger("kamado.scheduler")

# How often the service repeats a warning while the queue stays unserved.
REPEAT_S = 600.0


@dataclass(frozen=True)
class Unserved:
    """A queue with work waiting and no live worker consuming it."""

    queue: str
    waiting: int
    reason: str
    fix: str

    def line(self) -> str:
        """One sentence for a log or a status line."""
        return f"{self.reason}; {self.fix}"


def _gpu_context(hosts: list[HostHeartbeat]) -> tuple[str, str]:
    """What the host agents are doing about encode.gpu, and the fix to try."""
    fix = (
        "start a worker with a proven hardware backend on it (kamado guest run in the VM; "
        "kamado guest probe there shows what fails); hardware-only profiles such as "
        "h264-intel never run on the CPU: to encode them in software, give the rule a "
        "profile that accepts x264 (h264-auto)"
    )
    if not hosts:
        return "no host agent is up to start a GPU VM either", fix
    described = []
    for host in hosts:
        said = f"host agent {host.name}: VM {host.vm_state}"
        if host.preflight_ok is False:
            said += ", preflight failed"
        if host.last_action:
            said += f", last action {host.last_action!r}"
        described.append(said)
    return "; ".join(described), fix


def unserved_queues(
    registry: Registry, state: BrokerState, queues: Sequence[str] = (QUEUE_GPU, QUEUE_CPU)
) -> list[Unserved]:
    """Every queue in ``queues`` that holds work while no live worker heartbeat lists it."""
    beats = workers(registry)
    found: list[Unserved] = []
    for queue in queues:
        waiting = state.registry.waiting_count([queue])
        if not waiting or any(queue in beat.queues for beat in beats):
            continue
        reason = f"{waiting} job(s) wait in {queue} and no live worker consumes it"
        if queue == QUEUE_GPU:
            context, fix = _gpu_context(state.hosts())
            reason = f"{reason} ({context})"
        else:
            fix = f"start a software worker: kamado worker --queues {queue}"
        found.append(Unserved(queue, waiting, reason, fix))
    return found


class UnservedWatch:
    """Warns once when a queue becomes unserved, again every REPEAT_S, and when it recovers."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._told: dict[str, float] = {}

    def check(self, registry: Registry, state: BrokerState, now: float) -> list[Unserved]:
        """Look at the queues now; log what changed; return the unserved ones."""
        current = unserved_queues(registry, state)
        names = {u.queue for u in current}
        for gone in [q for q in self._since if q not in names]:
            log.info("%s is consumed again (or empty) after %.0f s", gone, now - self._since[gone])
            del self._since[gone]
            self._told.pop(gone, None)
        for item in current:
            self._since.setdefault(item.queue, now)
            if now - self._told.get(item.queue, float("-inf")) >= REPEAT_S:
                self._told[item.queue] = now
                log.warning("%s", item.line())
        return current
