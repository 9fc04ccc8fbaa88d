"""Webhook notifications: a JSON POST when a job fails (or succeeds), sent off the worker's path.

:meth:`Notifier.notify` only puts the notification on an in-memory queue and returns; a
daemon thread POSTs it, retrying with exponential back-off on network errors, 5xx, 408
and 429. Why a thread in the process that ends the job rather than a watcher process:
the reason and the worker are at hand there, it works the same on one box and on three,
and no extra service has to run. The price: a notification still waiting when the
process is killed is lost (the registry stays the truth; `kamado status` shows the job).
The thread starts lazily and again after a fork, so a Notifier built before Celery forks
its pool children works in each child.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from typing import Any

from worker.broker.registry import JobRecord
from worker.jobs import JobState
from worker.settings.admin import NotifySettings

log = logging.getLogger("kamado.notify")

SCHEMA_VERSION = 1
USER_AGENT = "kamado-notify/1"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
EVENTS = {JobState.FAILED: "job.failed", JobState.DONE: "job.done"}


@dataclass(frozen=True)
class Delivery:
    """One notification to send: its event name, body and id."""

    event: str
    body: bytes
    delivery_id: str
    job_id: str


@dataclass(frozen=True)
class Outcome:
    """How one POST went: delivered, worth retrying, or refused for good."""

    ok: bool
    retry: bool
    detail: str
    retry_after: float | None = None


def payload(record: JobRecord) -> dict[str, Any]:
    """The JSON body for a job that ended: the job, the reason and the worker."""
    job = record.job
    source = job.source
    return {
        "schema_version": SCHEMA_VERSION,
        "event": EVENTS.get(record.state, f"job.{record.state.value}"),
        "job": {
            "id": job.id,
            "source": source,
            "source_name": PurePosixPath(source).name,
            "output": job.output,
            "profile": job.profile,
            "priority": job.priority,
            "recording": job.recording.model_dump(mode="json") if job.recording else None,
        },
        "state": record.state.value,
        "reason": record.error,
        "kind": record.kind,
        "worker": record.worker,
        "backend": record.backend,
        "attempts": record.attempts,
        "result": record.result,
        "at": record.updated_at.isoformat() if record.updated_at else None,
    }


def signature(secret: str, body: bytes) -> str:
    """The X-Kamado-Signature header: sha256=<hex HMAC of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def post(settings: NotifySettings, delivery: Delivery) -> Outcome:
    """POST one notification once; never raises."""
    if settings.url is None:
        return Outcome(ok=False, retry=False, detail="no notify.url")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Kamado-Event": delivery.event,
        "X-Kamado-Delivery": delivery.delivery_id,
    }
    if settings.secret is not None:
        headers["X-Kamado-Signature"] = signature(settings.secret.get_secret_value(), delivery.body)
    request = urllib.request.Request(  # noqa: S310  (notify.url is checked to be http(s))
        settings.url.get_secret_value(), data=delivery.body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:  # noqa: S310
            return Outcome(ok=True, retry=False, detail=f"HTTP {response.status}")
    except urllib.error.HTTPError as e:
        return Outcome(
            ok=False,
            retry=e.code in RETRY_STATUSES,
            detail=f"HTTP {e.code} {e.reason}",
            retry_after=_retry_after(e.headers),
        )
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return Outcome(ok=False, retry=True, detail=str(reason))


def backoff_delay(settings: NotifySettings, attempt: int, retry_after: float | None) -> float:
    """Seconds to wait after failed POST number ``attempt`` (1-based): doubling, capped."""
    delay = min(settings.backoff * 2.0 ** (attempt - 1), settings.backoff_max)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.backoff_max))
    return delay


class Notifier:
    """Queues notifications and POSTs them from a daemon thread; notify() never blocks."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._pid = -1
        self._lock = threading.Lock()
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=settings.queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.abandoned = 0

    @property
    def enabled(self) -> bool:
        """True when a URL is configured."""
        return self.settings.url is not None

    def wanted(self, state: JobState) -> bool:
        """True when a job ending in ``state`` is notified under these settings."""
        if state is JobState.FAILED:
            return self.settings.on_failure
        if state is JobState.DONE:
            return self.settings.on_success
        return False

    def notify(self, record: JobRecord) -> bool:
        """Queue a notification for a job that ended; False when none is wanted."""
        if not self.enabled or not self.wanted(record.state):
            return False
        body = json.dumps(payload(record), ensure_ascii=False).encode()
        delivery = Delivery(
            event=EVENTS[record.state],
            body=body,
            delivery_id=uuid.uuid4().hex,
            job_id=record.id,
        )
        self._ensure_thread()
        while True:
            try:
                self._queue.put_nowait(delivery)
                return True
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    continue
                self._queue.task_done()
                self.abandoned += 1
                log.warning("notify: queue full, dropped the notice for job %s", dropped.job_id)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued notification was sent or abandoned; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return self._queue.unfinished_tasks == 0

    def close(self, timeout: float = 5.0) -> None:
        """Give pending notifications up to ``timeout`` seconds, then stop the thread."""
        self.flush(timeout)
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=max(self.settings.timeout, 1.0))
        left = self._queue.unfinished_tasks
        if left:
            log.warning("notify: %d notification(s) not sent before shutdown", left)

    def _ensure_thread(self) -> None:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if self._pid == os.getpid() and alive:
                return
            if self._pid != os.getpid():
                # A forked pool child: the parent's thread did not come along, and its
                # queue's lock may have been copied while held.
                self._queue = queue.Queue(maxsize=self.settings.queue_size)
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="kamado-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivery = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._deliver(delivery)
            finally:
                self._queue.task_done()

    def _deliver(self, delivery: Delivery) -> None:
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            outcome = post(self.settings, delivery)
            if outcome.ok:
                self.delivered += 1
                log.info("notify: %s for job %s sent", delivery.event, delivery.job_id)
                return
            if not outcome.retry or attempt == attempts:
                break
            delay = backoff_delay(self.settings, attempt, outcome.retry_after)
            log.warning(
                "notify: %s for job %s failed (%s); retry %d/%d in %.1f s",
                delivery.event, delivery.job_id, outcome.detail, attempt, attempts - 1, delay,
            )  # fmt: skip
            if self._stop.wait(delay):
                break
        self.abandoned += 1
        log.error(
            "notify: gave up on %s for job %s: %s", delivery.event, delivery.job_id, outcome.detail
        )
