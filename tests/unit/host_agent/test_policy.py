"""The agent's decisions: start for work, idle shutdown, never mid-job, crash restarts."""

from __future__ import annotations

from datetime import time
from typing import Any

from host_agent.policy import Action, Policy, VmView, Work, in_windows
from worker.settings.host import HostSettings

ON = VmView(active=True, reason="booted")
OFF = VmView(active=False, reason="shutdown")
DESTROYED = VmView(active=False, reason="destroyed")
IDLE = Work(waiting=0)
QUEUED = Work(waiting=2)
ENCODING = Work(waiting=0, running_job="job-1")


def policy(**settings: Any) -> Policy:
    defaults: dict[str, Any] = {"idle_shutdown": 60, "restart_backoff": 5, "restart_limit": 3}
    return Policy(HostSettings.model_validate(defaults | settings), now=0.0)


def step(p: Policy, now: float, vm: VmView, work: Work | None, **kw: bool) -> Action | None:
    decision = p.step(
        now, vm, work, in_window=kw.get("in_window", True), may_start=kw.get("may_start", True)
    )
    if decision is not None:
        p.acted(decision, now)
    return decision.action if decision else None


def test_queued_work_starts_a_stopped_vm() -> None:
    assert step(policy(), 1, OFF, QUEUED) is Action.START


def test_no_work_leaves_a_stopped_vm_alone() -> None:
    assert step(policy(), 1, OFF, IDLE) is None


def test_vm_is_shut_down_only_after_the_idle_time() -> None:
    p = policy()
    step(p, 0, OFF, QUEUED)
    assert step(p, 10, ON, QUEUED) is None
    assert step(p, 30, ON, IDLE) is None
    assert step(p, 69, ON, IDLE) is None, "idle counts from the last work seen (t=10)"
    assert step(p, 70, ON, IDLE) is Action.SHUTDOWN


def test_running_job_keeps_the_vm_up_however_long_it_takes() -> None:
    p = policy()
    step(p, 0, OFF, QUEUED)
    for now in range(10, 10_001, 10):
        assert step(p, now, ON, ENCODING) is None
    assert step(p, 10_010, ON, IDLE) is None
    assert step(p, 10_060, ON, IDLE) is Action.SHUTDOWN


def test_unacknowledged_message_counts_as_a_running_job() -> None:
    p = policy(idle_shutdown=0)
    step(p, 0, OFF, QUEUED)
    assert step(p, 100, ON, Work(waiting=0, in_flight=1)) is None


def test_unknown_work_while_redis_is_away_never_stops_the_vm() -> None:
    p = policy(idle_shutdown=0)
    step(p, 0, OFF, QUEUED)
    assert step(p, 100, ON, None) is None


def test_guest_that_ignores_the_shutdown_is_destroyed_after_the_timeout() -> None:
    p = policy(idle_shutdown=0, shutdown_timeout=30)
    step(p, 0, OFF, QUEUED)
    assert step(p, 1, ON, IDLE) is Action.SHUTDOWN
    assert step(p, 20, ON, IDLE) is None
    assert step(p, 31, ON, IDLE) is Action.DESTROY


def test_stop_the_agent_asked_for_is_not_restarted() -> None:
    p = policy(idle_shutdown=0)
    step(p, 0, OFF, QUEUED)
    step(p, 1, ON, IDLE)
    assert step(p, 2, DESTROYED, IDLE) is None
    assert step(p, 100, OFF, IDLE) is None


def test_guest_powering_itself_off_is_respected() -> None:
    p = policy()
    step(p, 0, OFF, QUEUED)
    step(p, 1, ON, ENCODING)
    assert step(p, 2, OFF, IDLE) is None
    assert step(p, 200, OFF, IDLE) is None


def test_vm_destroyed_behind_the_agents_back_is_restarted_after_the_backoff() -> None:
    p = policy()
    step(p, 0, OFF, QUEUED)
    step(p, 1, ON, ENCODING)
    assert step(p, 2, DESTROYED, IDLE) is None
    assert step(p, 6.9, DESTROYED, IDLE) is None
    assert step(p, 7, DESTROYED, IDLE) is Action.START


def test_backoff_doubles_and_the_agent_gives_up_at_the_limit() -> None:
    p = policy(restart_backoff=5, restart_limit=3, restart_window=3600)
    now = 0.0
    step(p, now, OFF, QUEUED)
    delays = []
    for _ in range(3):
        step(p, now + 1, ON, IDLE)
        step(p, now + 2, VmView(active=False, reason="crashed"), IDLE)
        crashed_at = now + 2
        now = crashed_at
        while step(p, now, VmView(active=False, reason="crashed"), IDLE) is not Action.START:
            now += 0.5
        delays.append(now - crashed_at)
    assert delays == [5, 10, 20]
    step(p, now + 1, ON, IDLE)
    step(p, now + 2, VmView(active=False, reason="crashed"), IDLE)
    assert p.gave_up
    assert step(p, now + 1000, OFF, QUEUED) is None
    assert step(p, now + 4000, OFF, QUEUED) is Action.START, "the window passed"


def test_backoff_is_capped() -> None:
    p = policy(restart_backoff=100, restart_backoff_max=150, restart_limit=10)
    p.crashes.extend([0.0, 0.0, 0.0])
    step(p, 1, ON, IDLE)
    step(p, 2, DESTROYED, IDLE)
    assert p.restart_due_at == 152


def test_failed_start_is_retried_with_backoff() -> None:
    p = policy(restart_backoff=5)
    assert step(p, 0, OFF, QUEUED) is Action.START
    p.start_failed(0, "no such device")
    assert step(p, 1, OFF, QUEUED) is None
    assert step(p, 5, OFF, QUEUED) is Action.START


def test_vm_is_not_started_outside_the_power_windows_or_when_the_host_is_busy() -> None:
    assert step(policy(), 1, OFF, QUEUED, in_window=False) is None
    assert step(policy(), 1, OFF, QUEUED, may_start=False) is None


def test_leaving_the_power_window_stops_an_idle_vm_but_not_a_busy_one() -> None:
    p = policy()
    step(p, 0, OFF, QUEUED)
    assert step(p, 1, ON, ENCODING, in_window=False) is None
    assert step(p, 2, ON, QUEUED, in_window=False) is Action.SHUTDOWN


def test_power_windows_are_checked_against_local_time() -> None:
    host = HostSettings(power_windows=["01:00-07:00", "22:00-23:00"])
    assert in_windows(host, time(1, 0)) and in_windows(host, time(22, 30))
    assert not in_windows(host, time(7, 0)) and not in_windows(host, time(12, 0))
    assert in_windows(HostSettings(), time(12, 0))


def test_vm_dying_before_the_next_poll_still_counts_as_a_crash() -> None:
    p = policy(restart_backoff=5)
    assert step(p, 0, OFF, QUEUED) is Action.START
    assert step(p, 1, VmView(active=False, reason="crashed"), QUEUED) is None, "back-off"
    assert p.crashes and p.last_crash == "crashed"
    assert step(p, 6, OFF, QUEUED) is Action.START


UNCONSUMED = Work(waiting=2, consuming=False)
CONSUMED = Work(waiting=2, consuming=True)


def test_a_vm_whose_worker_never_consumes_is_shut_down_and_held() -> None:
    p = policy(consume_timeout=100)
    assert step(p, 0, OFF, UNCONSUMED) is Action.START
    assert step(p, 99, ON, UNCONSUMED) is None, "it may still be booting"
    decision = p.step(100, ON, UNCONSUMED, in_window=True, may_start=True)
    assert decision is not None and decision.action is Action.SHUTDOWN
    assert "no worker celery@kamado-gpu consuming encode.gpu within 100s" in decision.reason
    p.acted(decision, 100)
    assert step(p, 110, OFF, UNCONSUMED) is None, "the stop was asked for: no crash restart"
    assert step(p, 199, OFF, UNCONSUMED) is None, "held for consume_timeout"
    assert step(p, 200, OFF, UNCONSUMED) is Action.START
    assert step(p, 300, ON, UNCONSUMED) is Action.SHUTDOWN
    assert step(p, 310, OFF, UNCONSUMED) is None
    assert step(p, 499, OFF, UNCONSUMED) is None, "the hold doubles"
    assert step(p, 500, OFF, UNCONSUMED) is Action.START


def test_a_worker_that_consumes_keeps_the_vm_and_clears_the_hold() -> None:
    p = policy(consume_timeout=100)
    step(p, 0, OFF, UNCONSUMED)
    for now in range(10, 1000, 10):
        assert step(p, now, ON, CONSUMED) is None
    assert p.unconsumed == 0 and p.hold_until is None


def test_unknown_consumption_or_a_zero_timeout_never_shuts_down_for_it() -> None:
    for p, work in ((policy(consume_timeout=100), QUEUED), (policy(consume_timeout=0), UNCONSUMED)):
        step(p, 0, OFF, work)
        assert step(p, 10_000, ON, work) is None


def test_a_vm_found_running_counts_from_when_it_was_seen() -> None:
    p = policy(consume_timeout=100)
    assert step(p, 50, ON, UNCONSUMED) is None
    assert step(p, 149, ON, UNCONSUMED) is None
    assert step(p, 150, ON, UNCONSUMED) is Action.SHUTDOWN
