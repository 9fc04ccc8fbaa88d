"""An attempt's link to Redis while it works: lease, progress and cancel, off the hot path.

One thread per attempt renews the lease every third of its TTL, writes the latest
progress, and polls the cancel flag. The encode loop never waits on Redis: it hands
progress over and asks ``check()``, which only reads flags. So when the broker is cut
off (a paused VM, a frozen Redis), the watchdog still sees within a second that the
lease has not been renewed for longer than its TTL, kills ffmpeg, and the attempt never
commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from worker.broker.registry import Registry
from worker.errors import BrokerError, JobCancelled, KamadoError, LeaseLost
from worker.progress import Progress
from worker.spans import span

log = logging.getLogger("kamado.lease")

TICK = 0.25
CANCEL_POLL = 1.0


class LeaseKeeper:
    """Renews one attempt's lease and reports its progress from a background thread."""

    def __init__(
        self,
        registry: Registry,
        job_id: str,
        attempt_id: str,
        *,
        publish: Callable[[Progress], None] = lambda _p: None,
    ) -> None:
        self.registry = registry
        self.job_id = job_id
        self.attempt_id = attempt_id
        self.interval = registry.lease_ttl / 3
        self._publish = publish
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lost = ""
        self._cancelled = False
        self._pending: Progress | None = None
        self._lock = threading.Lock()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with span(self.job_id, "lease.stop"):
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=self.registry.lease_ttl + 5)

    # -- called from the encode loop (never blocks on Redis) -----------------------------

    def report(self, progress: Progress) -> None:
        """Hand over the newest progress; the thread writes it soon after."""
        with self._lock:
            self._pending = progress
        self._wake.set()

    @property
    def lost(self) -> str:
        """Why the lease is lost, or an empty string while it is held."""
        if self._lost:
            return self._lost
        if time.monotonic() - self._last_ok > self.registry.lease_ttl:
            return "not renewed for longer than its TTL (broker unreachable)"
        return ""

    def check(self) -> None:
        """Raise LeaseLost or JobCancelled when the attempt must stop (cheap; call often)."""
        if self.lost:
            raise LeaseLost(self.job_id, self.lost)
        if self._cancelled:
            raise JobCancelled(self.job_id)

    def guard_commit(self) -> None:
        """Right before the rename: the attempt must still hold the lease, renewed now."""
        if self.lost:
            raise LeaseLost(self.job_id, self.lost)
        try:
            held = self.registry.renew(self.job_id, self.attempt_id)
        except BrokerError as e:
            raise LeaseLost(self.job_id, f"cannot confirm the lease before commit ({e})") from e
        if not held:
            raise LeaseLost(self.job_id, "another attempt holds it, or it expired")
        self._last_ok = time.monotonic()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        next_renew = time.monotonic() + self.interval
        next_cancel = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + self.interval
                    if not self.registry.renew(self.job_id, self.attempt_id):
                        self._lost = "another attempt holds it, or it expired"
                        return
                    self._last_ok = time.monotonic()
                if now >= next_cancel:
                    next_cancel = now + CANCEL_POLL
                    self._cancelled = self.registry.cancel_requested(self.job_id)
                self._flush()
            except BrokerError as e:
                log.warning("job %s: broker unreachable (%s); retrying", self.job_id, e)
            self._wake.wait(TICK)
            self._wake.clear()
        try:
            self._flush()
        except BrokerError as e:
            log.warning("job %s: last progress not stored: %s", self.job_id, e)

    def _flush(self) -> None:
        with self._lock:
            progress, self._pending = self._pending, None
        if progress is None:
            return
        self.registry.update(self.job_id, self.attempt_id, progress)
        try:
            self._publish(progress)
        except KamadoError:
            raise
        except Exception as e:  # the result backend and events are best effort
            log.warning("job %s: progress not published: %s", self.job_id, e)
