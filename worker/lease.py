"""Keeping an attempt's lease alive while it works, and noticing when it is gone.

A thread renews the lease every third of its TTL. When a renewal is refused (another
attempt took over) or Redis cannot be reached for longer than the TTL (a cut network, a
paused VM), the attempt is marked lost: the encode watchdog then kills ffmpeg, and the
commit check refuses the rename.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from worker.errors import BrokerError, JobCancelled, LeaseLost
from worker.registry import Registry

log = logging.getLogger("kamado.lease")

CANCEL_POLL = 1.0


class LeaseKeeper:
    """Renews one attempt's lease in the background; ``check()`` raises when it must stop."""

    def __init__(self, registry: Registry, job_id: str, attempt_id: str) -> None:
        self.registry = registry
        self.job_id = job_id
        self.attempt_id = attempt_id
        self.interval = registry.lease_ttl / 3
        self._stop = threading.Event()
        self._lost = ""
        self._last_ok = time.monotonic()
        self._last_cancel_check = 0.0
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
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.registry.renew(self.job_id, self.attempt_id):
                    self._lost = "another attempt holds it, or it expired"
                    return
                self._last_ok = time.monotonic()
            except BrokerError as e:
                if time.monotonic() - self._last_ok > self.registry.lease_ttl:
                    self._lost = f"Redis unreachable for longer than the lease ({e})"
                    return
                log.warning("job %s: lease renewal failed, retrying: %s", self.job_id, e)

    @property
    def lost(self) -> str:
        """Why the lease is lost, or an empty string while it is held."""
        if not self._lost and time.monotonic() - self._last_ok > self.registry.lease_ttl:
            return "not renewed for longer than its TTL"
        return self._lost

    def check(self) -> None:
        """Raise LeaseLost or JobCancelled when the attempt must stop (called often)."""
        if self.lost:
            raise LeaseLost(self.job_id, self.lost)
        if time.monotonic() - self._last_cancel_check >= CANCEL_POLL:
            self._last_cancel_check = time.monotonic()
            try:
                cancelled = self.registry.cancel_requested(self.job_id)
            except BrokerError:
                return  # the renewal thread decides when an unreachable Redis is fatal
            if cancelled:
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
