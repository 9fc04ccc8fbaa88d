"""The host agent's loop: watch the queues and the VM, start, stop and restart it, report.

Once per poll (or at once on a libvirt lifecycle event) the agent reads the VM's state
from libvirt and the work from Redis, asks :class:`~host_agent.policy.Policy` what to
do, does it, and publishes a :class:`~worker.broker.heartbeat.HostHeartbeat`. A broken libvirt
connection is reopened on the next poll; Redis reconnects by itself. While either is
away the agent neither starts nor stops the VM for work, so a blip never kills an encode.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from host_agent.domain import domain_xml
from host_agent.errors import DomainNotFound, HostAgentError, HypervisorUnavailable
from host_agent.lifecycle import DomainStatus, Hypervisor, LifecycleEvent
from host_agent.policy import Action, Decision, Policy, VmView, Work, in_windows
from host_agent.redis_state import RedisState
from worker.broker.heartbeat import HostHeartbeat
from worker.broker.heartbeat import now as utc_now
from worker.errors import BrokerError
from worker.settings.host import HostSettings

log = logging.getLogger("kamado.host_agent")

HEARTBEAT_TTL_FACTOR = 3


@dataclass(frozen=True)
class ActionRecord:
    """Something the agent did (or failed to do) to the VM, and why."""

    action: str
    reason: str
    at: float
    wall: datetime = field(default_factory=utc_now)


def default_load() -> float:
    """The host's 1-minute load average."""
    return os.getloadavg()[0]


def local_time() -> datetime:
    """The local wall-clock time (power windows are local)."""
    return datetime.now()  # power windows are written in local time


class Agent:
    """The long-running host agent for one VM."""

    def __init__(
        self,
        settings: HostSettings,
        *,
        state: RedisState | None,
        hypervisor: Hypervisor | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = local_time,
        load: Callable[[], float] = default_load,
        preflight_ok: bool | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.vm.name
        self.agent_name = settings.agent_name or socket.gethostname()
        self.state = state
        self.hypervisor = hypervisor or Hypervisor(settings.libvirt_uri)
        self.hypervisor.on_event = self._on_event
        self.clock = clock
        self.wall_clock = wall_clock
        self.load = load
        self.preflight_ok = preflight_ok
        self.policy = Policy(settings, clock())
        self.history: deque[ActionRecord] = deque(maxlen=100)
        self.events: deque[LifecycleEvent] = deque(maxlen=100)
        self.last_status: DomainStatus | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_heartbeat = float("-inf")
        self._announced_give_up = False

    def _on_event(self, event: LifecycleEvent) -> None:
        # Runs on libvirt's event thread: only note it and wake the loop.
        if event.domain == self.name:
            self.events.append(event)
            self._wake.set()

    def run(self) -> None:
        """Poll until :meth:`stop` is called."""
        log.info("host agent for %s on %s started", self.name, self.settings.libvirt_uri)
        while not self._stop.is_set():
            try:
                self.tick()
            except HostAgentError as e:
                log.error("%s", e)
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()
        self.hypervisor.close()
        log.info("host agent for %s stopped", self.name)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current poll."""
        self._stop.set()
        self._wake.set()

    def tick(self) -> None:
        """Observe once, act if the policy says so, publish the heartbeat when due."""
        now = self.clock()
        status = self._observe_vm()
        work = self._observe_work()
        acted = False
        if status is not None:
            decision = self.policy.step(
                now,
                VmView(status.active, status.reason),
                work,
                in_window=in_windows(self.settings, self.wall_clock().time()),
                may_start=self._load_ok(),
            )
            if decision is not None:
                self._act(decision, now)
                acted = True
                status = self._observe_vm()
        if self.policy.gave_up and not self._announced_give_up:
            self._record(
                "gave up",
                f"{self.settings.restart_limit} restarts within "
                f"{self.settings.restart_window:g}s; last stop: {self.policy.last_crash}",
            )
            acted = True
        self._announced_give_up = self.policy.gave_up
        self.last_status = status
        if acted or now - self._last_heartbeat >= self.settings.heartbeat_interval:
            self._publish(now, status)

    def _load_ok(self) -> bool:
        limit = self.settings.busy_load
        return limit is None or self.load() <= limit

    def define(self) -> None:
        """Define the VM from config, or update its definition (applies at next boot)."""
        self.hypervisor.define(domain_xml(self.settings.vm), self.name)

    def _observe_vm(self) -> DomainStatus | None:
        if not self.hypervisor.alive:
            try:
                self.hypervisor.open()
                self.define()
                log.info("connected to libvirt at %s", self.settings.libvirt_uri)
            except HostAgentError as e:
                log.warning("%s", e)
                return None
        try:
            return self.hypervisor.status(self.name)
        except DomainNotFound:
            try:
                self.define()
                return self.hypervisor.status(self.name)
            except HostAgentError as e:
                log.error("%s", e)
                return None
        except HypervisorUnavailable as e:
            log.warning("%s", e)
            self.hypervisor.close()
            return None

    def _observe_work(self) -> Work | None:
        if self.state is None:
            return None
        queues = self.settings.queues
        try:
            waiting = self.state.queue_depth(queues)
            in_flight = self.state.in_flight(queues)
            heartbeat = self.state.worker_heartbeat(self.settings.guest_worker)
        except BrokerError as e:
            log.warning("%s", e)
            return None
        consuming = heartbeat is not None and any(q in heartbeat.queues for q in queues)
        return Work(waiting, in_flight, heartbeat.current_job if heartbeat else None, consuming)

    def _act(self, decision: Decision, now: float) -> None:
        try:
            if decision.action is Action.START:
                self.hypervisor.start(self.name)
            elif decision.action is Action.SHUTDOWN:
                self.hypervisor.request_shutdown(self.name)
            else:
                self.hypervisor.destroy(self.name)
        except HostAgentError as e:
            log.error("%s", e)
            if decision.action is Action.START:
                self.policy.start_failed(now, str(e))
                self._record("start failed", str(e))
            else:
                self._record(f"{decision.action.value} failed", str(e))
            return
        self.policy.acted(decision, now)
        self._record(decision.action.value, decision.reason)

    def _record(self, action: str, reason: str) -> None:
        log.info("%s %s: %s", action, self.name, reason)
        self.history.append(ActionRecord(action, reason, self.clock()))

    def heartbeat(self, status: DomainStatus | None) -> HostHeartbeat:
        """The heartbeat this agent publishes for ``status``."""
        last = self.history[-1] if self.history else None
        hold = self.policy.hold_until
        left = hold - self.clock() if hold is not None else 0.0
        return HostHeartbeat(
            name=self.agent_name,
            vm_state=status.state.value if status is not None else "unknown",
            last_action=f"{last.action}: {last.reason}" if last else "",
            last_action_at=last.wall if last else None,
            preflight_ok=self.preflight_ok,
            held_until=utc_now() + timedelta(seconds=left) if left > 0 else None,
            guest_worker=self.settings.guest_worker,
        )

    def _publish(self, now: float, status: DomainStatus | None) -> None:
        if self.state is None:
            return
        ttl = self.settings.heartbeat_interval * HEARTBEAT_TTL_FACTOR
        try:
            self.state.publish_host(self.heartbeat(status), ttl)
        except BrokerError as e:
            log.warning("%s", e)
            return
        self._last_heartbeat = now
