"""The consumer watchdog: a worker with work waiting and a free slot never stays silent.

Celery/kombu workers on Redis have been seen to stop receiving after a broker restart
with nothing in their log (celery #8030, #9054): the job waits forever with its message
in Redis. A thread in the worker's main process (never in the pool children that run
ffmpeg) checks every few seconds: when a queue it serves holds ready messages, it has a
free slot, and it has received nothing for ``worker.watchdog_silence`` seconds, it
restarts its consumer the way Celery recovers from a lost connection (in the worker's
own event loop); if it is still silent one more period later, or with
``watchdog_action = "exit"``, it exits non-zero so systemd starts it afresh. Each action
is logged and counted (``kamado_watchdog_actions_total``). Idle queues never trigger it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from celery.signals import task_received
from celery.worker import state

from worker.broker.counters import count_watchdog
from worker.broker.registry import Registry
from worker.errors import BrokerError, KamadoError
from worker.settings.model import Settings

log = logging.getLogger("kamado.watchdog")

EXIT_SILENT = 1  # the operation (consuming) failed; systemd's Restart=on-failure restarts
RESTART = "restart"
EXIT = "exit"


class SilentConsumer(ConnectionError):
    """Raised in the worker's event loop to make Celery restart its consumer.

    Raised when the watchdog found the worker silent with work waiting; Celery handles
    it as a lost broker connection: it reconnects and consumes its queues again.
    """


class ConsumerWatchdog:
    """Watches one worker's consumer from a thread of its main process (a WorkerHook)."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        queues: Callable[[], list[str]],
        *,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.silence = settings.worker.watchdog_silence
        self.action = settings.worker.watchdog_action
        self.concurrency = settings.worker.concurrency
        self.url = url
        self.lease_ttl = settings.jobs.lease_ttl
        self.queues = queues
        self.exit_process = exit_process
        self.tick = min(max(self.silence / 5, 0.5), 5.0)
        self.hostname = ""
        self.consumer: Any = None
        self.registry: Registry | None = None
        self.last_received = time.monotonic()
        self.waiting_since: float | None = None
        self.restarted_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer-watchdog", daemon=True)

    # -- WorkerHook ---------------------------------------------------------------------

    def start(self, sender: Any = None, **_: Any) -> None:
        """worker_ready: note every message received and start watching."""
        if self.silence <= 0:
            return
        self.consumer = sender
        self.hostname = str(getattr(sender, "hostname", "") or "")
        controller = getattr(sender, "controller", None)
        self.concurrency = int(getattr(controller, "concurrency", 0) or self.concurrency)
        self.registry = Registry.connect(self.url, lease_ttl=self.lease_ttl)
        task_received.connect(self.received, weak=False)
        self.last_received = time.monotonic()
        self._thread.start()
        log.info(
            "watchdog on: it acts when %s hold ready messages, a slot is free and nothing "
            "was received for %g s (then: %s)",
            ", ".join(self.queues()), self.silence,
            "exit" if self.action == EXIT else "restart the consumer, exit if still silent",
        )  # fmt: skip

    def stop(self, **_: Any) -> None:
        """worker_shutdown: stop watching."""
        self._stop.set()
        task_received.disconnect(self.received)
        if self._thread.is_alive():
            self._thread.join(timeout=self.tick + 5)
        if self.registry is not None:
            self.registry.close()

    def received(self, **_: Any) -> None:
        """task_received (in the consumer's loop): the consumer is alive."""
        self.last_received = time.monotonic()

    # -- the check ----------------------------------------------------------------------

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.tick):
            try:
                self.check()
                failing = False
            except KamadoError as e:
                if not failing:  # once per outage, not every tick while the broker is away
                    log.warning("watchdog: %s; looking again every %g s", e, self.tick)
                failing = True

    def ready_messages(self) -> int:
        """Messages waiting in the queues this worker serves, every priority level."""
        assert self.registry is not None
        return self.registry.waiting_count(self.queues())

    def free_slot(self) -> bool:
        """True when fewer messages are held (running or prefetched) than pool processes."""
        return len(state.reserved_requests) < self.concurrency

    def check(self, now: float | None = None) -> str:
        """One look; returns what it did: idle, busy, waiting, restart or exit."""
        now = time.monotonic() if now is None else now
        if not self.free_slot():
            self.waiting_since = None
            return "busy"
        try:
            ready = self.ready_messages()
        except BrokerError:
            self.waiting_since = None  # the broker is away: Celery itself reconnects
            raise
        if not ready:
            self.waiting_since = None
            self.restarted_at = None
            return "idle"
        if self.waiting_since is None:
            self.waiting_since = now
        quiet_for = now - max(self.waiting_since, self.last_received)
        if quiet_for < self.silence:
            return "waiting"
        if self.action == EXIT or (
            self.restarted_at is not None and self.last_received < self.restarted_at
        ):
            self.exit(ready, quiet_for)
            return EXIT
        self.restart(ready, quiet_for)
        return RESTART

    # -- the actions --------------------------------------------------------------------

    def restart(self, ready: int, quiet_for: float) -> None:
        """Ask the worker's event loop to restart the consumer on the queues it serves."""
        total = self._count(RESTART)
        log.warning(
            "watchdog: %s received nothing for %.0f s with a free slot while %d message(s) "
            "wait in %s; restarting its consumer (restart %d)",
            self.hostname, quiet_for, ready, ", ".join(self.queues()), total,
        )  # fmt: skip
        self.restarted_at = time.monotonic()
        self.waiting_since = self.restarted_at
        hub = getattr(self.consumer, "hub", None)
        if hub is None:
            self.exit(ready, quiet_for)
            return
        hub.call_soon(self._restart_in_loop)

    def _restart_in_loop(self) -> None:
        # Runs in the event loop: consume every served queue again (a cancelled one too),
        # then leave the loop as a lost connection does, so Celery reconnects and restarts.
        # Celery rebuilds the consumer from the app's selected queues: select each served
        # queue again (a cancel_consumer deselects it), keeping its declared options.
        queues = self.consumer.app.amqp.queues
        for name in self.queues():
            queues.select_add(queues.get(name, name))
        raise SilentConsumer("kamado watchdog: consumer silent with work waiting; restarting")

    def exit(self, ready: int, quiet_for: float) -> None:
        """Exit the worker non-zero so systemd starts it afresh (running work is retried)."""
        total = self._count(EXIT)
        why = "after a consumer restart did not help" if self.restarted_at else "as configured"
        log.error(
            "watchdog: %s received nothing for %.0f s with a free slot while %d message(s) "
            "wait in %s; exiting with %d %s so systemd restarts the worker (exit %d)",
            self.hostname, quiet_for, ready, ", ".join(self.queues()), EXIT_SILENT, why, total,
        )  # fmt: skip
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        self.exit_process(EXIT_SILENT)

    def _count(self, action: str) -> int:
        assert self.registry is not None
        try:
            return count_watchdog(self.registry, self.hostname, action)
        except BrokerError as e:
            log.warning("watchdog: %s not counted: %s", action, e)
            return 0
