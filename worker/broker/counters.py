"""Monotonic counters kept in Redis, so Prometheus ``rate()`` works across restarts.

A counter is a hash: one field per label set, incremented where the event happens
(HINCRBY) and never decremented. Redis's AOF keeps them across a broker restart, and
no process that might restart holds a count of its own, so any process can export them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worker.broker.keys import ATTEMPT_FAILURES, WATCHDOG_ACTIONS
from worker.errors import (
    AttemptCrashed,
    BackendUnavailable,
    BadInputError,
    BrokerError,
    EncodeError,
    EncodeErrorKind,
    OutputError,
    SourceError,
    StagingError,
    VerifyError,
)

if TYPE_CHECKING:
    from worker.broker.registry import Registry


# Attempt outcomes that are not failures: still running, finished, a duplicate delivery
# dropped before it ran, or a cancel the user asked for.
NOT_FAILED = frozenset({"running", "done", "dropped", "cancelled"})


# The reason labels of kamado_attempt_failures_total, as docs/deploy.md lists them:
# ffmpeg's own kinds (worker/encode/stderr.py) first, then kamado's.
FFMPEG_KINDS: tuple[str, ...] = tuple(EncodeErrorKind)
FAILURE_REASONS = (
    *FFMPEG_KINDS,
    "timeout",  # ran past encode.soft_time_limit
    "lost",  # the worker stopped renewing its lease (killed, crashed, cut off)
    "verify",  # the output failed ffprobe's checks
    "output",  # the output could not be written or placed
    "backend",  # the job's backends are not proven on that worker
    "staging",  # fetching the source or pushing the output failed
    "broker",  # Redis could not be reached mid-attempt
    "internal",  # an error kamado did not expect (a bug: see the worker's log)
    "unknown",  # anything else, such as a kind recorded by an older version
)
_BY_CLASS: tuple[tuple[type[Exception], str], ...] = (
    (SourceError, "input"),
    (BadInputError, "input"),
    (VerifyError, "verify"),
    (OutputError, "output"),
    (BackendUnavailable, "backend"),
    (StagingError, "staging"),
    (BrokerError, "broker"),
    (AttemptCrashed, "internal"),
)


def failure_kind(error: Exception) -> str:
    """The documented reason an attempt that raised ``error`` failed for."""
    if isinstance(error, EncodeError):
        return error.kind.value
    declared = getattr(error, "kind", None)
    if isinstance(declared, str) and declared in FAILURE_REASONS:
        return declared
    return next((reason for cls, reason in _BY_CLASS if isinstance(error, cls)), "unknown")


def failure_reason(outcome: str, kind: str | None) -> str | None:
    """The reason label an ended attempt counts under, or None when it did not fail."""
    if outcome in NOT_FAILED:
        return None
    return kind if kind in FAILURE_REASONS else "unknown"


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
