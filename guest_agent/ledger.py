"""A guest worker's run of hardware failures and its usable backends, kept in Redis.

The pool children that run jobs write it (their task_postrun reads how the attempt
ended from the job registry); the worker's main process reads it to decide when to
stop consuming encode.gpu, and writes back which backends the children may use.
Redis is the one place both sides see: pool children share no memory with the parent.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from celery.signals import task_postrun, task_prerun

from worker.broker.keys import guest_key
from worker.broker.registry import AttemptRecord, JobRecord, Registry
from worker.errors import HARDWARE_KINDS, BrokerError
from worker.jobs import ENCODE_TASK
from worker.profiles import QUEUE_GPU, Backend
from worker.settings.model import Settings

log = logging.getLogger("kamado.guest")


def last_attempt(record: JobRecord, hostname: str) -> AttemptRecord | None:
    """The latest finished attempt this worker made at the job."""
    mine = [a for a in record.history if a.worker == hostname and a.ended_at is not None]
    return max(mine, key=lambda a: (a.number, a.started_at)) if mine else None


def attempt_backend(record: JobRecord, attempt: AttemptRecord) -> str | None:
    """The backend an attempt ran: its own record, else the job's last progress."""
    return attempt.backend or record.backend


class Ledger:
    """One guest worker's failure count, last failure and usable backends in Redis."""

    def __init__(self, registry: Registry, hostname: str) -> None:
        self.registry = registry
        self.hostname = hostname
        self.count_key = guest_key(hostname, "hardware-failures")
        self.last_key = guest_key(hostname, "last-failure")
        self.usable_key = guest_key(hostname, "backends")
        self.status_key = guest_key(hostname, "status")

    def note(self, record: JobRecord) -> int | None:
        """Count this worker's latest attempt at the job; the new count, or None if unchanged."""
        attempt = last_attempt(record, self.hostname)
        if attempt is None:
            return None
        backend = attempt_backend(record, attempt)
        if backend is None or not Backend(backend).hardware:
            return None
        client = self.registry.client
        if attempt.outcome == "done":
            self.registry.call("reset the failure count", client.set, self.count_key, 0)
            return 0
        if attempt.kind not in HARDWARE_KINDS:
            return None
        count = int(self.registry.call("count a failure", client.incr, self.count_key))
        reason = f"{backend}, {attempt.kind}: {attempt.error or ''}".strip()
        self.registry.call("note a failure", client.set, self.last_key, reason)
        return count

    def count(self) -> int:
        """Consecutive hardware failures since the last success or reset."""
        raw = self.registry.call("read the failure count", self.registry.client.get, self.count_key)
        return int(raw or 0)

    def last_failure(self) -> str:
        """The backend, kind and reason of the last counted failure."""
        raw = self.registry.call("read the last failure", self.registry.client.get, self.last_key)
        return str(raw or "")

    def reset(self) -> None:
        """Start counting afresh (at start, and once the GPU proved itself again)."""
        self.registry.call("reset the failure count", self.registry.client.set, self.count_key, 0)

    def set_usable(self, backends: list[Backend], gpu: list[Backend] | None = None) -> None:
        """Tell the pool children which backends they may choose from now on.

        ``gpu`` is the list for messages taken from encode.gpu (default: the same); it
        keeps the hardware backends while the GPU is suspended (see TaskHooks.before).
        """
        value = json.dumps(
            {"any": [b.value for b in backends], "gpu": [b.value for b in (gpu or backends)]}
        )
        self.registry.call(
            "store usable backends", self.registry.client.set, self.usable_key, value
        )

    def usable(self, queue: str = "") -> list[Backend] | None:
        """The backends the children may choose for a message from ``queue``, or None."""
        raw = self.registry.call("read usable backends", self.registry.client.get, self.usable_key)
        if not raw:
            return None
        data = json.loads(raw)
        return [Backend(b) for b in data["gpu" if queue == QUEUE_GPU else "any"]]

    def publish_status(self, status: dict[str, Any], ttl: float) -> None:
        """Write the guard's status (what `kamado guest status` and tests read)."""
        self.registry.call(
            "publish the guest status",
            self.registry.client.set,
            self.status_key,
            json.dumps(status),
            px=int(ttl * 1000),
        )

    def status(self) -> dict[str, Any] | None:
        """The guard's last published status."""
        raw = self.registry.call("read the guest status", self.registry.client.get, self.status_key)
        return dict(json.loads(raw)) if raw else None

    def clear(self) -> None:
        """Remove every key of this worker (at shutdown)."""
        keys = (self.count_key, self.last_key, self.usable_key, self.status_key)
        self.registry.call("remove guest keys", self.registry.client.delete, *keys)


class TaskHooks:
    """Celery task signals for the pool children: read usable backends, count failures.

    Connected in the main process before the pool forks, so every child inherits them.
    Each child opens its own Redis connection (sockets must not cross a fork).
    """

    def __init__(self, settings: Settings, url: str) -> None:
        self.settings = settings
        self.url = url
        self._by_pid: dict[int, Registry] = {}

    def connect(self) -> None:
        """Subscribe to task_prerun and task_postrun."""
        task_prerun.connect(self.before, weak=False)
        task_postrun.connect(self.after, weak=False)

    def _registry(self) -> Registry:
        pid = os.getpid()
        if pid not in self._by_pid:
            self._by_pid = {pid: Registry.connect(self.url, lease_ttl=self.settings.jobs.lease_ttl)}
        return self._by_pid[pid]

    def before(self, sender: Any = None, task: Any = None, **_: Any) -> None:
        """task_prerun: make the task choose only among the backends the guest allows now.

        A message taken from encode.gpu keeps the hardware backends even while the GPU is
        suspended (it was reserved before the consumer was cancelled): failing it with a
        hardware error sends it back to the queue, where refusing it as "no backend"
        would fail a hardware-only job for good.
        """
        if task is None or task.name != ENCODE_TASK:
            return
        delivery = getattr(task.request, "delivery_info", None) or {}
        queue = str(delivery.get("routing_key") or "")
        try:
            usable = Ledger(self._registry(), str(task.request.hostname)).usable(queue)
        except BrokerError as e:
            log.warning("could not read the usable backends: %s", e)
            return
        if usable is not None:
            task.app.conf.kamado_backends = [b.value for b in usable]

    def after(self, sender: Any = None, task: Any = None, args: Any = None, **_: Any) -> None:
        """task_postrun: count the attempt that just ended if it ran on a hardware backend."""
        if task is None or task.name != ENCODE_TASK or not args or not isinstance(args[0], dict):
            return
        job_id = args[0].get("id")
        if not isinstance(job_id, str):
            return
        hostname = str(task.request.hostname)
        try:
            registry = self._registry()
            record = registry.get(job_id, with_history=True)
            if record is None:
                return
            count = Ledger(registry, hostname).note(record)
        except BrokerError as e:
            log.warning("could not count the attempt at job %s: %s", job_id, e)
            return
        if count:
            log.warning("job %s: hardware failure %d in a row on %s", job_id, count, hostname)
