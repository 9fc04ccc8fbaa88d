"""The Celery events kamado sends about its tasks, so Flower shows kamado's own words.

Flower builds its task list from events (celery.events.state). Celery ranks a custom
``task-<name>`` event by the state its name spells, and a state it ranks below the
task's current one only merges its fields in: ``PENDING`` ranks below every other state.
So kamado's updates travel as ``task-pending`` events carrying kamado's fields: a
running encode stays STARTED (Flower's Started filter), a finished one SUCCESS or
FAILURE, and the fields (state word, percent, fps, ETA, backend, reason) ride along.
A task that will never run because its job moved to another queue or was cancelled gets
Celery's own ``task-revoked`` event, so Flower lists it as REVOKED, not PENDING or FAILURE.

Flower copies and pickles its task objects through Celery's own field list, so an event
field of another name would be lost before format_task sees it. kamado's fields travel
as one JSON text in the event's ``result`` field, marked with ``kamado:``; a finished
task's ``result`` is then the worker's return value, which has the same facts.

Events are a view, so sending one never blocks a job for long: the worker's lease keeper
thread sends progress, and a frozen Redis must not delay its lease renewals. Each event
goes over its own connection with short socket timeouts (redis-py still tries three
times), and after a failed send this process sends nothing for QUIET_S seconds.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import weakref
from typing import Any

from celery import Celery

from worker.progress import Progress

__all__ = ["MOVED", "ended_fields", "send_revoked", "send_waiting", "sender_name"]

log = logging.getLogger("kamado.worker")

UPDATE_EVENT = "task-pending"
REVOKED_EVENT = "task-revoked"
MARK = "kamado:"
MOVED = "moved"
# Seconds one socket read, write or connect of an event may take (redis-py tries 3 times).
EVENT_TIMEOUT_S = 0.5
# After a failed send, seconds without sending (a frozen broker costs one wait per period).
QUIET_S = 10.0
_EVENT_TRANSPORT = {
    "socket_timeout": EVENT_TIMEOUT_S,
    "socket_connect_timeout": EVENT_TIMEOUT_S,
    "retry_on_timeout": False,
    "health_check_interval": 0,
    "max_retries": 0,  # kombu's own connect loop: one try
}
# app → monotonic time before which no event is sent (after a failure); per process.
_quiet_until: weakref.WeakKeyDictionary[Celery, float] = weakref.WeakKeyDictionary()


def encode(fields: dict[str, Any]) -> str:
    """kamado's fields as the text of an event's ``result`` field."""
    return MARK + json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def decode(text: object) -> dict[str, Any] | None:
    """The fields :func:`encode` wrote, or None for any other text."""
    if not isinstance(text, str) or not text.startswith(MARK):
        return None
    try:
        found = json.loads(text.removeprefix(MARK))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def progress_fields(progress: Progress) -> dict[str, Any]:
    """The event fields of one progress report (state word, %, fps, speed, ETA, backend)."""
    return {
        "state": progress.state.value,
        "percent": progress.percent,
        "fps": progress.fps,
        "speed": progress.speed,
        "eta_s": progress.eta_s,
        "backend": progress.backend,
    }


def ended_fields(state: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The event fields of a job that ended without output (failed, cancelled, moved)."""
    return {"state": state, "reason": reason, **extra}


def sender_name(role: str) -> str:
    """The event hostname of a process that is not a worker (Flower lists it as a node)."""
    return f"kamado-{role}@{socket.gethostname()}"


def send(app: Celery, hostname: str, event: str, task_id: str, fields: dict[str, Any]) -> None:
    """Send one task event within about two seconds; a failure is logged, never raised."""
    send_many(app, hostname, event, [(task_id, fields)])


def send_many(
    app: Celery, hostname: str, event: str, batch: list[tuple[str, dict[str, Any]]]
) -> None:
    """Send one event per (task id, fields) over one connection; failures are logged."""
    if not batch or time.monotonic() < _quiet_until.get(app, 0.0):
        return
    try:
        # No retry loop and no offline buffer: an event that cannot go now is dropped.
        with (
            app.connection_for_write(transport_options=_EVENT_TRANSPORT) as connection,
            app.events.Dispatcher(
                connection, hostname=hostname, buffer_while_offline=False
            ) as dispatcher,
        ):
            for task_id, fields in batch:
                dispatcher.send(event, uuid=task_id, **fields)
    except Exception as e:  # kombu/redis raise many types; the job must not fail over a view
        _quiet_until[app] = time.monotonic() + QUIET_S
        first = batch[0][0]
        log.warning("task %s: event %s not sent (none for %.0f s): %s", first, event, QUIET_S, e)


def send_update(app: Celery, hostname: str, task_id: str, fields: dict[str, Any]) -> None:
    """Merge kamado's fields into the task Flower shows, keeping its Celery state."""
    send(app, hostname, UPDATE_EVENT, task_id, {"result": encode(fields)})


def send_waiting(app: Celery, hostname: str, reasons: dict[str, str]) -> None:
    """Tell Flower why these queued tasks wait (task id → kamado's reason)."""
    batch = [(t, {"result": encode({"state": "queued", "waiting": r})}) for t, r in reasons.items()]
    send_many(app, hostname, UPDATE_EVENT, batch)


def send_revoked(app: Celery, hostname: str, task_id: str, fields: dict[str, Any]) -> None:
    """Mark a task that will never run (moved or cancelled) REVOKED, with kamado's reason."""
    send(app, hostname, REVOKED_EVENT, task_id, {"terminated": False, "result": encode(fields)})
