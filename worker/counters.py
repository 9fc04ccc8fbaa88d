"""Monotonic counters kept in Redis, so Prometheus ``rate()`` works across restarts.

A counter is a hash: one field per label set, incremented where the event happens
(HINCRBY) and never decremented. Redis's AOF keeps them across a broker restart, and
no process that might restart holds a count of its own, so any process can export them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.registry import Registry

# Failed attempts by reason (the error kind: input, ffmpeg, lost, timeout, ...).
ATTEMPT_FAILURES = "kamado:counter:attempt_failures"
# Watchdog actions by worker and action (restart, exit): field is JSON [worker, action].
WATCHDOG_ACTIONS = "kamado:counter:watchdog"

# Attempt outcomes that are not failures: still running, finished, a duplicate delivery
# dropped before it ran, or a cancel the user asked for.
NOT_FAILED = frozenset({"running", "done", "dropped", "cancelled"})


def failure_reason(outcome: str, kind: str | None) -> str | None:
    """The reason label an ended attempt counts under, or None when it did not fail."""
    if outcome in NOT_FAILED:
        return None
    return kind or "unknown"


@dataclass
class Counters:
    """Every counter's current value, read in one round trip."""

    attempt_failures: dict[str, int] = field(default_factory=dict)
    watchdog: dict[tuple[str, str], int] = field(default_factory=dict)


def count_watchdog(registry: Registry, worker: str, action: str) -> int:
    """Count one watchdog action of ``worker``; the new total for that worker and action."""
    name = json.dumps([worker, action], ensure_ascii=False)
    return int(registry.call("count a watchdog action", registry.client.hincrby,
                             WATCHDOG_ACTIONS, name, 1))  # fmt: skip


def read_counters(registry: Registry) -> Counters:
    """The counters' values (raises BrokerError when Redis cannot be read)."""
    pipe = registry.client.pipeline(transaction=False)
    pipe.hgetall(ATTEMPT_FAILURES)
    pipe.hgetall(WATCHDOG_ACTIONS)
    failures, watchdog = registry.call("read counters", pipe.execute)
    found = Counters(attempt_failures={k: int(v) for k, v in sorted(failures.items())})
    for raw, value in sorted(watchdog.items()):
        try:
            worker, action = json.loads(raw)
        except (ValueError, TypeError):
            continue
        found.watchdog[(str(worker), str(action))] = int(value)
    return found
