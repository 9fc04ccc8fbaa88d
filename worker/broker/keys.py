"""Every Redis key kamado writes, and the layout of kombu's own keys that kamado reads.

One module, so that the wire layout between the roles can be read in one place and no
role spells a key by hand. kamado's keys all start with ``kamado:``:

=================================  ==========================================================
``kamado:job:<id>``                the job's hash (state, attempts, progress, result)
``kamado:job:<id>:lease``          the lease of the attempt that may run the job
``kamado:job:<id>:attempts``       every attempt: attempt id → AttemptRecord JSON
``kamado:job:<id>:live``           a live job's phase, lag and reason (worker/broker/live.py)
``kamado:jobs``                    sorted set of job ids by submission time
``kamado:jobs:active``             set of jobs that are not final
``kamado:jobs:ended``              pub/sub channel: a job may have ended (a hint to waiters)
``kamado:scheduler:flags``         the recorder's flags per job (drops, errors, failed)
``kamado:scheduler:estimate``      the scheduler's length estimate per job
``kamado:heartbeat:worker:<host>`` a worker's heartbeat (TTL)
``kamado:heartbeat:host:<name>``   a host agent's heartbeat (TTL)
``kamado:speed:<host>``            a worker's measured speed per backend
``kamado:guest:<host>:<name>``     the guest agent's ledger of its hardware failures
``kamado:outputs`` …               output and source claims (worker/broker/claims.py)
``kamado:counter:…``               monotonic counters for Prometheus
=================================  ==========================================================

kombu's Redis transport keeps a queue as one list per priority level: ``name`` for level
0, ``name\\x06\\x16<level>`` above it; producers LPUSH, workers BRPOP the first non-empty
list in level order. Delivered, unacknowledged messages sit in the ``unacked`` hash as
``[message, exchange, routing_key]`` JSON, their delivery times in ``unacked_index``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ACTIVE",
    "ATTEMPT_FAILURES",
    "ENDED",
    "EPGSTATION_PENDING",
    "ESTIMATES",
    "FLAGS",
    "GUEST_PREFIX",
    "HEARTBEAT_PREFIX",
    "INDEX",
    "JOB_PREFIX",
    "JOB_SOURCES",
    "OUTPUTS",
    "PRIORITY_SEP",
    "PRIORITY_STEPS",
    "SOURCES",
    "SPEED_PREFIX",
    "UNACKED",
    "UNACKED_INDEX",
    "WATCHDOG_ACTIONS",
    "WRITTEN",
    "attempts_key",
    "guest_key",
    "host_key",
    "job_key",
    "lease_key",
    "live_key",
    "queue_list",
    "queue_lists",
    "speed_key",
    "worker_key",
]

# kombu's layout (Celery's Redis transport with kamado's priority_steps).
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = tuple(range(10))  # every level Celery may use, 0 (most urgent) to 9
UNACKED = "unacked"
# Delivery tag → the time kombu delivered it (a sorted set beside the hash).
UNACKED_INDEX = "unacked_index"

# The job registry (worker/broker/registry.py).
JOB_PREFIX = "kamado:job:"
INDEX = "kamado:jobs"
ACTIVE = "kamado:jobs:active"
# Published with the job id when a job may have reached a final state: a hint that wakes
# waiters (`kamado encode`) at once instead of at their next poll. Waiters still poll.
ENDED = "kamado:jobs:ended"
# The scheduler's flags per job (drops, errors, a failed recording), merged over every
# submission of the job; a worker reads them before deleting a source.
FLAGS = "kamado:scheduler:flags"
# job id -> JSON: done outputs the scheduler registers in EPGStation's library.
EPGSTATION_PENDING = "kamado:scheduler:epgstation"
ESTIMATES = "kamado:scheduler:estimate"

# Output and source claims (worker/broker/claims.py).
OUTPUTS = "kamado:outputs"
WRITTEN = "kamado:outputs:written"
SOURCES = "kamado:sources"
JOB_SOURCES = "kamado:outputs:job-source"

# Presence: heartbeats and measured speeds (worker/broker/heartbeat.py, presence.py).
HEARTBEAT_PREFIX = "kamado:heartbeat"
SPEED_PREFIX = "kamado:speed:"
GUEST_PREFIX = "kamado:guest:"

# Counters (worker/broker/counters.py). Failed attempts by reason:
ATTEMPT_FAILURES = "kamado:counter:attempt_failures"
# Watchdog actions by worker and action (restart, exit): field is JSON [worker, action].
WATCHDOG_ACTIONS = "kamado:counter:watchdog"


def job_key(job_id: str) -> str:
    """The hash holding one job."""
    return f"{JOB_PREFIX}{job_id}"


def lease_key(job_id: str) -> str:
    """The lease of the attempt that may run the job."""
    return f"{JOB_PREFIX}{job_id}:lease"


def attempts_key(job_id: str) -> str:
    """Every attempt at the job: attempt id → AttemptRecord JSON."""
    return f"{JOB_PREFIX}{job_id}:attempts"


def live_key(job_id: str) -> str:
    """A live job's phase (recording, finished, abandoned, ...), lag and reason."""
    return f"{JOB_PREFIX}{job_id}:live"


def worker_key(hostname: str) -> str:
    """The heartbeat key of one worker."""
    return f"{HEARTBEAT_PREFIX}:worker:{hostname}"


def host_key(name: str) -> str:
    """The heartbeat key of one host agent."""
    return f"{HEARTBEAT_PREFIX}:host:{name}"


def speed_key(hostname: str) -> str:
    """The hash of one worker's measured speeds: backend → {fps, realtime, jobs}."""
    return f"{SPEED_PREFIX}{hostname}"


def guest_key(hostname: str, name: str) -> str:
    """One value of a guest agent's ledger."""
    return f"{GUEST_PREFIX}{hostname}:{name}"


def queue_list(queue: str, level: int) -> str:
    """The Redis list holding a queue's messages of one priority level."""
    return queue if level == 0 else f"{queue}{PRIORITY_SEP}{level}"


def queue_lists(queues: Iterable[str]) -> list[str]:
    """Every list these queues' messages may wait in, in the order a worker takes them.

    Level by level (0 first), and within a level in the order the queues are given, as
    kombu's BRPOP is called.
    """
    names = list(queues)
    return [queue_list(q, level) for level in PRIORITY_STEPS for q in names]
