"""When the VM should start, stop or be restarted: the agent's decisions, free of I/O.

The agent observes the VM (libvirt) and the work (Redis) once per poll and asks
:class:`Policy` what to do; the policy remembers what it asked for, so a stop it did not
ask for is a crash to recover from, with exponential back-off and a limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import time
from enum import StrEnum

from worker.settings.host import HostSettings

# Reasons libvirt gives for a shutoff that nobody asked for and that should be undone.
UNEXPECTED_STOPS = frozenset({"destroyed", "crashed", "failed", "unknown", "daemon"})


class Action(StrEnum):
    """What the agent does to the VM."""

    START = "start"
    SHUTDOWN = "shutdown"
    DESTROY = "destroy"


@dataclass(frozen=True)
class Decision:
    """An action and the reason that will be published with it."""

    action: Action
    reason: str


# The longest a VM whose worker never consumed waits before it is started for work again.
HOLD_MAX = 6 * 3600.0


@dataclass(frozen=True)
class Work:
    """The work the VM's queues hold right now, and whether the guest's worker takes it."""

    waiting: int
    in_flight: int = 0
    running_job: str | None = None
    # True: the guest's worker heartbeat lists one of the queues; False: no such
    # heartbeat; None: not known (then it never causes a shutdown).
    consuming: bool | None = None

    @property
    def busy(self) -> bool:
        """True while the guest is encoding (never shut down then)."""
        return self.running_job is not None or self.in_flight > 0


@dataclass(frozen=True)
class VmView:
    """What the policy needs to know about the VM: active or not, and why it stopped."""

    active: bool
    reason: str = ""


def in_windows(settings: HostSettings, moment: time) -> bool:
    """True when the VM may run at this local time (no windows: always)."""
    windows = settings.windows
    return not windows or any(w.contains(moment) for w in windows)


class Policy:
    """The agent's memory and rules: idle time, expected stops, restart back-off."""

    def __init__(self, settings: HostSettings, now: float) -> None:
        self.settings = settings
        self.last_work_at = now
        self.was_active = False
        self.stop_requested_at: float | None = None
        self.restart_due_at: float | None = None
        self.crashes: deque[float] = deque()
        self.gave_up = False
        self.last_crash = ""
        self.started_at: float | None = None
        self.unconsumed = 0
        self.hold_until: float | None = None

    def step(
        self, now: float, vm: VmView, work: Work | None, *, in_window: bool, may_start: bool
    ) -> Decision | None:
        """The one thing to do now, or None."""
        self._track(now, vm)
        if work is not None and (work.waiting or work.busy):
            self.last_work_at = now
        if vm.active:
            return self._while_running(now, work, in_window)
        if self.gave_up:
            return None
        if self.restart_due_at is not None:
            if now >= self.restart_due_at and in_window:
                self.restart_due_at = None
                return Decision(Action.START, f"restart after the VM stopped ({self.last_crash})")
            return None
        held = self.hold_until is not None and now < self.hold_until
        if work is not None and work.waiting and in_window and may_start and not held:
            self.last_work_at = now
            return Decision(Action.START, f"{work.waiting} job(s) waiting")
        return None

    def _track(self, now: float, vm: VmView) -> None:
        while self.crashes and now - self.crashes[0] > self.settings.restart_window:
            self.crashes.popleft()
        if self.gave_up and not self.crashes:
            self.gave_up = False
        stopped = self.was_active and not vm.active
        if vm.active and not self.was_active:
            self.started_at = now  # started by hand, or seen running when the agent began
        self.was_active = vm.active
        if not stopped:
            return
        expected = self.stop_requested_at is not None
        self.stop_requested_at = None
        if expected or vm.reason not in UNEXPECTED_STOPS:
            return
        self.last_crash = vm.reason
        if len(self.crashes) >= self.settings.restart_limit:
            self.gave_up = True
            return
        s = self.settings
        delay = min(s.restart_backoff * 2 ** len(self.crashes), s.restart_backoff_max)
        self.crashes.append(now)
        self.restart_due_at = now + delay

    def _while_running(self, now: float, work: Work | None, in_window: bool) -> Decision | None:
        self.restart_due_at = None
        if self.stop_requested_at is not None:
            if now - self.stop_requested_at >= self.settings.shutdown_timeout:
                return Decision(Action.DESTROY, "the guest ignored the shutdown request")
            return None
        if work is None or work.busy:
            # Unknown work (Redis away) or a running encode: never stop mid-job.
            return None
        if not in_window:
            return Decision(Action.SHUTDOWN, "outside the power windows")
        unconsumed = self._unconsumed(now, work)
        if unconsumed is not None:
            return unconsumed
        idle = now - self.last_work_at
        if not work.waiting and idle >= self.settings.idle_shutdown:
            return Decision(Action.SHUTDOWN, f"idle for {idle:.0f}s")
        return None

    def _unconsumed(self, now: float, work: Work) -> Decision | None:
        """Shut down a VM whose worker has not taken its queues within consume_timeout."""
        s = self.settings
        if work.consuming:
            self.unconsumed = 0
            self.hold_until = None
            return None
        if work.consuming is None or not work.waiting or not s.consume_timeout:
            return None
        if self.started_at is None or now - self.started_at < s.consume_timeout:
            return None
        hold = min(s.consume_timeout * 2**self.unconsumed, HOLD_MAX)
        self.unconsumed += 1
        self.hold_until = now + hold
        return Decision(
            Action.SHUTDOWN,
            f"no worker {s.guest_worker} consuming {', '.join(s.queues)} within "
            f"{s.consume_timeout:g}s of the VM's start ({work.waiting} job(s) waiting): is "
            f"the guest agent running with a proven hardware backend? Next start for work "
            f"in {hold:g}s",
        )

    def acted(self, decision: Decision, now: float) -> None:
        """Record that the agent carried out ``decision`` (so its stop is expected)."""
        if decision.action in (Action.SHUTDOWN, Action.DESTROY):
            if self.stop_requested_at is None:
                self.stop_requested_at = now
        else:
            self.last_work_at = now
            self.stop_requested_at = None
            self.started_at = now
            # Running from now on: a death before the next poll still counts as a crash.
            self.was_active = True

    def start_failed(self, now: float, reason: str) -> None:
        """A start the agent tried failed: count it as a crash and retry with back-off."""
        self.was_active = True
        self.stop_requested_at = None
        self._track(now, VmView(active=False, reason="failed"))
        self.last_crash = reason
