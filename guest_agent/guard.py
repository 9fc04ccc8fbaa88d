"""The GPU guard: a thread in the worker's main process that takes encode.gpu away from a
GPU that keeps failing, re-probes it, and gives the queue back once it proves itself.

A hung or reset GPU fails every job it gets; peers let such a node drain the queue. After
``guest.hardware_failure_limit`` consecutive attempts that failed with kind hardware,
crash or stalled on a hardware backend (counted by the pool children, guest_agent/ledger.py),
the guard cancels this worker's encode.gpu consumer through Celery's remote control,
limits the children to software backends, re-probes at once and then every
``guest.reprobe_interval`` seconds, and adds the consumer back when a hardware backend
encodes again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery

from guest_agent.ledger import Ledger
from guest_agent.plan import Plan, problems
from guest_agent.probe import GuestProbe, run_probe
from worker.broker.heartbeat import BackendProblem
from worker.broker.registry import Registry
from worker.errors import BrokerError, KamadoError
from worker.profiles import QUEUE_GPU, Backend
from worker.runtime.service import HeartbeatHook
from worker.settings.model import Settings

log = logging.getLogger("kamado.guest")

CONTROL_TIMEOUT = 5.0


class GpuGuard:
    """Watches the failure count, suspends and restores encode.gpu, re-probes the GPU."""

    def __init__(
        self,
        app: Celery,
        settings: Settings,
        plan: Plan,
        heartbeat: HeartbeatHook,
        *,
        reprobe: Callable[[Settings], GuestProbe] = run_probe,
    ) -> None:
        self.app = app
        self.settings = settings
        self.plan = plan
        self.heartbeat = heartbeat
        self.reprobe_fn = reprobe
        self.serving_gpu = plan.serves_gpu
        self.usable = list(plan.usable)
        self.suspended_because = ""
        self.reprobes = 0
        self.last_probe_at: float | None = None
        self.next_probe = time.monotonic() + settings.guest.reprobe_interval
        self.hostname = ""
        self.ledger: Ledger | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-guard", daemon=True)

    @property
    def hardware_candidates(self) -> list[Backend]:
        """Hardware backends this worker may (come back to) use."""
        return [b for b in self.plan.candidates if b.hardware]

    def start(self, sender: Any = None, **_: Any) -> None:
        """worker_ready: reset the count, tell the children their backends, start watching."""
        self.hostname = str(getattr(sender, "hostname", "") or "")
        url = str(self.app.conf.broker_url)
        self.ledger = Ledger(Registry.connect(url), self.hostname)
        self.ledger.reset()
        self.ledger.set_usable(self.usable)
        self._publish()
        self._thread.start()

    def stop(self, **_: Any) -> None:
        """worker_shutdown: stop watching and remove this worker's guest keys."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.guest.probe_timeout + 10)
        if self.ledger is not None:
            try:
                self.ledger.clear()
            except BrokerError as e:
                log.warning("could not remove the guest keys: %s", e)
            self.ledger.registry.close()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.guest.check_interval):
            try:
                self.check()
            except KamadoError as e:  # broker away, probe could not run: try next round
                log.warning("gpu guard: %s", e)

    def check(self) -> None:
        """One round: suspend after too many failures; re-probe when due while suspended."""
        assert self.ledger is not None
        if self.serving_gpu:
            count = self.ledger.count()
            if count >= self.settings.guest.hardware_failure_limit:
                self.suspend(count, self.ledger.last_failure())
                self.reprobe()
        elif self.hardware_candidates and time.monotonic() >= self.next_probe:
            self.reprobe()
        self._publish()

    def suspend(self, count: int, last: str) -> None:
        """Stop consuming encode.gpu and limit the children to software backends."""
        assert self.ledger is not None
        self.suspended_because = f"{count} hardware failures in a row; last: {last}"
        log.warning("gpu guard: %s; stopping %s and re-probing", self.suspended_because, QUEUE_GPU)
        gpu = list(self.usable)
        self.usable = list(self.plan.software)
        self.ledger.set_usable(self.usable, gpu=gpu)
        self._control("cancel_consumer")
        self.serving_gpu = False
        self.heartbeat.queues = [q for q in self.heartbeat.queues if q != QUEUE_GPU]
        self.heartbeat.backends = {b.value: self.plan.fps.get(b.value) for b in self.usable}
        self.heartbeat.problems = [
            *self.heartbeat.problems,
            *[
                BackendProblem(
                    backend=b.value,
                    status="suspended",
                    kind="hardware",
                    reason=self.suspended_because,
                )
                for b in self.plan.usable
                if b.hardware
            ],
        ]

    def reprobe(self) -> None:
        """Prove the backends again; give encode.gpu back if a hardware one encodes."""
        assert self.ledger is not None
        probe = self.reprobe_fn(self.settings)
        self.reprobes += 1
        self.last_probe_at = probe.probed_at
        self.next_probe = time.monotonic() + self.settings.guest.reprobe_interval
        proven = [b for b in self.hardware_candidates if b in probe.proven]
        found = problems(probe)
        if not proven:
            log.warning("gpu guard: re-probe %d found no working hardware backend", self.reprobes)
            suspended = [p for p in self.heartbeat.problems if p.status == "suspended"]
            self.heartbeat.problems = [*found, *suspended]
            return
        log.warning("gpu guard: %s proven again; consuming %s", ", ".join(proven), QUEUE_GPU)
        self.usable = [*proven, *self.plan.software]
        self.ledger.reset()
        self.ledger.set_usable(self.usable)
        self._control("add_consumer")
        self.serving_gpu = True
        self.suspended_because = ""
        if QUEUE_GPU not in self.heartbeat.queues:
            self.heartbeat.queues = [QUEUE_GPU, *self.heartbeat.queues]
        self.heartbeat.backends = {
            b.value: probe.backends[b].fps if b in probe.backends else None for b in self.usable
        }
        self.heartbeat.problems = found

    def _control(self, command: str) -> None:
        # Remote control goes through the broker to this very worker's pidbox, which the
        # worker's own event loop serves; calling the consumer directly from this thread
        # would race that loop.
        method = getattr(self.app.control, command)
        try:
            method(QUEUE_GPU, destination=[self.hostname], reply=True, timeout=CONTROL_TIMEOUT)
        except Exception as e:  # kombu/redis raise many types; all mean the broker is away
            raise BrokerError(f"cannot {command} {QUEUE_GPU} on {self.hostname}: {e}") from e

    def status(self) -> dict[str, Any]:
        """What the guard knows, as published in Redis."""
        assert self.ledger is not None
        if self.serving_gpu:
            gpu = "serving"
        elif self.suspended_because:
            gpu = "suspended"
        else:
            gpu = "not proven"
        return {
            "hostname": self.hostname,
            "gpu": gpu,
            "reason": self.suspended_because,
            "hardware_failures": self.ledger.count(),
            "limit": self.settings.guest.hardware_failure_limit,
            "reprobes": self.reprobes,
            "last_probe_at": self.last_probe_at,
            "usable": [b.value for b in self.usable],
            "queues": list(self.heartbeat.queues),
        }

    def _publish(self) -> None:
        assert self.ledger is not None
        ttl = max(30.0, self.settings.guest.check_interval * 5)
        self.ledger.publish_status(self.status(), ttl)
