"""The routing policy as pure functions: which queue, and which waiting jobs move."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cluster import delivery, wake_delay
from scheduler.routing import Cluster, Lane, Pending, initial_queue, plan
from worker.broker.heartbeat import HostHeartbeat
from worker.profiles import BUILTIN_PROFILES
from worker.settings.scheduler import RoutingSettings

AUTO = BUILTIN_PROFILES["h264-auto"]
INTEL = BUILTIN_PROFILES["h264-intel"]
X264 = BUILTIN_PROFILES["h264-x264"]


def cluster(hw: list[float], sw: list[float], *, hw_speed: float = 10, sw_speed: float = 0.5,
            waiting: int = 0) -> Cluster:  # fmt: skip
    return Cluster(Lane(hw, hw_speed), Lane(sw, sw_speed), waiting, len(sw))


def test_hardware_only_jobs_always_wait_for_the_gpu_queue() -> None:
    assert initial_queue(INTEL, cluster([], [0.0])) == "encode.gpu"


def test_software_profiles_go_straight_to_the_cpu_queue() -> None:
    assert initial_queue(X264, cluster([0.0], [])) == "encode.cpu"


def test_auto_jobs_go_to_the_gpu_when_hardware_is_up_or_wakeable_else_to_the_cpu() -> None:
    assert initial_queue(AUTO, cluster([0.0], [0.0])) == "encode.gpu"
    assert initial_queue(AUTO, cluster([90.0], [0.0])) == "encode.gpu"  # a VM to wake
    assert initial_queue(AUTO, cluster([], [0.0])) == "encode.cpu"
    assert initial_queue(AUTO, cluster([], [])) == "encode.gpu"  # nobody: wait for the VM


def test_a_job_moves_only_when_the_hardware_wait_exceeds_the_software_time() -> None:
    jobs = [Pending("a", 600, True), Pending("b", 60, True)]
    # hardware busy 100 s: a ends at 160 there (1200 s on cpu); b at 166 vs 120 on cpu
    assert plan(jobs, cluster([100.0], [0.0]), lookahead=1) == ["b"]
    # hardware busy 10 s: b would end at 76 on hardware; the cpu's 120 s is slower
    assert plan(jobs, cluster([10.0], [0.0]), lookahead=1) == []


def test_hardware_only_jobs_never_move_even_when_the_cpu_is_idle() -> None:
    assert plan([Pending("a", 60, False)], cluster([10_000.0], [0.0]), lookahead=1) == []


def test_moves_are_limited_to_the_software_lookahead() -> None:
    jobs = [Pending(str(i), 60, True) for i in range(5)]
    assert plan(jobs, cluster([], [0.0, 0.0]), lookahead=1) == ["0", "1"]
    assert plan(jobs, cluster([], [0.0, 0.0], waiting=2), lookahead=1) == []


def test_boot_time_counts_toward_the_hardware_wait() -> None:
    jobs = [Pending("short", 10, True)]
    assert plan(jobs, cluster([90.0], [0.0]), lookahead=1) == ["short"]  # 20 s < 91 s
    assert plan([Pending("long", 60, True)], cluster([90.0], [0.0]), lookahead=1) == []


def test_wake_delay_needs_a_host_that_passed_preflight_and_counts_a_boot_in_progress() -> None:
    routing = RoutingSettings(vm_boot_time=90)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    booting = HostHeartbeat(name="h", vm_state="running", last_action_at=at - timedelta(seconds=30))
    assert wake_delay([], routing, at) is None
    assert wake_delay([HostHeartbeat(name="h", vm_state="shutoff")], routing, at) == 90
    assert wake_delay([booting], routing, at) == 60
    broken = HostHeartbeat(name="h", vm_state="shutoff", preflight_ok=False)
    assert wake_delay([broken], routing, at) is None


def test_a_host_holding_starts_after_its_guest_never_consumed_wakes_only_after_the_hold() -> None:
    routing = RoutingSettings(vm_boot_time=90)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    held = HostHeartbeat(name="h", vm_state="shutoff", held_until=at + timedelta(seconds=1200))
    assert wake_delay([held], routing, at) == 1290
    over = held.model_copy(update={"held_until": at - timedelta(seconds=1)})
    assert wake_delay([over], routing, at) == 90
    # With the hold, a 30-minute software encode now beats waiting for the hardware.
    hardware = Lane([1290.0], 8.0)
    software = Lane([0.0], 1.0)
    moved = plan([Pending("job", 600, True)], Cluster(hardware, software, 0, 1), lookahead=1)
    assert moved == ["job"]


GUEST = "celery@g1"


@settings(max_examples=60, deadline=None)
@given(
    state=st.sampled_from(["running", "shutoff", "paused", "unknown"]),
    since=st.floats(min_value=0, max_value=3600),
    boot=st.floats(min_value=0, max_value=600),
    preflight=st.sampled_from([None, True, False]),
)
def test_a_host_whose_guest_is_up_without_hardware_brings_no_hardware(
    state: str, since: float, boot: float, preflight: bool | None
) -> None:
    routing = RoutingSettings(vm_boot_time=boot)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    host = HostHeartbeat(name="h", vm_state=state, last_action_at=at - timedelta(seconds=since),
                         preflight_ok=preflight, guest_worker=GUEST)  # fmt: skip
    assert wake_delay([host], routing, at, {GUEST}) is None
    # a guest serving hardware, or not beating yet, is not among them: as without a guest
    before = wake_delay([host.model_copy(update={"guest_worker": ""})], routing, at)
    assert wake_delay([host], routing, at, set()) == before
    assert wake_delay([host], routing, at, {"celery@other"}) == before
    # an older agent names no guest: its VM state alone counts
    old = host.model_copy(update={"guest_worker": ""})
    assert wake_delay([old], routing, at, {GUEST, ""}) == before


@pytest.mark.parametrize(
    ("guest", "expected"),
    [("software only", None), ("hardware", 60.0), ("not beating", 60.0)],
)
def test_a_booting_vm_counts_as_hardware_until_its_guest_beats_without_any(
    guest: str, expected: float | None
) -> None:
    routing = RoutingSettings(vm_boot_time=90)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    host = HostHeartbeat(name="h", vm_state="running", guest_worker=GUEST,
                         last_action_at=at - timedelta(seconds=30))  # fmt: skip
    no_hardware = {GUEST, "celery@cpu"} if guest == "software only" else {"celery@cpu"}
    assert wake_delay([host], routing, at, no_hardware) == expected
    # another host that can still wake keeps the hardware lane
    other = HostHeartbeat(name="h2", vm_state="shutoff")
    assert wake_delay([host, other], routing, at, no_hardware) == (expected or 90)


def test_a_host_holding_its_starts_counts_from_the_hold_even_with_its_guest_up() -> None:
    routing = RoutingSettings(vm_boot_time=90)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    held = HostHeartbeat(name="h", vm_state="running", guest_worker=GUEST,
                         held_until=at + timedelta(seconds=1200))  # fmt: skip
    assert wake_delay([held], routing, at, {GUEST}) == 1290


def test_a_lane_without_slots_never_finishes() -> None:
    assert math.isinf(Lane([], 1.0).finish(10))


def test_the_slow_worker_gets_the_longest_job_it_ends_before_the_hardware_would_start_it() -> None:
    # hardware at 10x drains 100+60+30+20+90 = 300 s of queue; software at 0.5x
    jobs = [Pending("a", 600, True), Pending("b", 300, True), Pending("c", 200, True),
            Pending("d", 900, True)]  # fmt: skip
    # d: 1800 s on cpu, far too long; a: 1200 s > 300 - 60; b: 600 s > 270; c: 400 > 280
    assert plan(jobs, cluster([100.0], [0.0]), lookahead=1) == []
    # an hour of hardware work ahead: every job fits; the longest goes, not the first
    assert plan(jobs, cluster([3600.0], [0.0]), lookahead=1) == ["d"]
    # drained at 1700 s: d would end at 1800 s, after the other jobs' 1610 s; a fits
    assert plan(jobs, cluster([1500.0], [0.0]), lookahead=1) == ["a"]


def test_near_the_end_the_slow_worker_gets_a_short_job_the_hardware_would_reach_late() -> None:
    # fast 1500x is free in 0.5 s and drains the queue by 3.37 s; slow 300x is free in 1 s.
    # Only the short job (1.23 s there) ends before hardware would reach it as the last;
    # taken in delivery order, none finishes sooner on software where it sits.
    jobs = [Pending("mid", 1114, True), Pending("short", 369, True),
            Pending("tail", 1229, True), Pending("long", 1591, True)]  # fmt: skip
    lanes = cluster([0.5], [1.0], hw_speed=1500, sw_speed=300)
    assert plan(jobs, lanes, lookahead=1) == ["short"]


def test_new_recordings_move_before_longer_backlog_jobs() -> None:
    jobs = [Pending("new", 60, True, priority=2), Pending("old", 600, True, priority=7),
            Pending("old2", 600, True, priority=7)]  # fmt: skip
    assert plan(jobs, cluster([3600.0], [0.0]), lookahead=1) == ["new"]
    # a new recording the hardware reaches before software could finish it stays
    jobs[0] = Pending("new", 60, True, priority=2)
    assert plan(jobs, cluster([100.0], [0.0]), lookahead=1) == []


def test_a_new_recording_waits_as_if_last_of_its_level_not_behind_the_backlog() -> None:
    # 1200 s of backlog queued behind it does not count toward its wait
    jobs = [Pending("new", 600, True, priority=2), Pending("old", 12000, False, priority=7)]
    assert plan(jobs, cluster([100.0], [0.0]), lookahead=1) == []


def test_without_hardware_software_takes_jobs_in_delivery_order() -> None:
    jobs = [Pending("intel", 60, False), Pending("a", 60, True), Pending("b", 6000, True)]
    assert plan(jobs, cluster([], [0.0]), lookahead=1) == ["a"]
    assert plan(jobs, cluster([], [0.0]), lookahead=2) == ["a", "b"]


def test_the_software_lane_fills_up_as_moves_are_planned() -> None:
    jobs = [Pending(str(i), 600, True) for i in range(4)]
    # 2400 s of hardware work at 1x; each move puts 1200 s on one software slot at 0.5x
    two_slots = cluster([0.0], [0.0, 0.0], hw_speed=1)
    assert plan(jobs, two_slots, lookahead=2) == ["0", "1"]  # a third would end at 2400 s
    assert plan(jobs, cluster([0.0], [0.0], hw_speed=1), lookahead=2) == ["0"]


def test_a_job_just_taken_occupies_the_earliest_free_slot() -> None:
    lane = Lane([30.0, 0.0], 1.0)
    lane.occupy(100.0)
    assert lane.free_at == [30.0, 100.0]
    lane.occupy(0.0)
    assert lane.free_at == [30.0, 100.0]
    empty = Lane([], 1.0)
    empty.occupy(10.0)
    assert empty.free_at == []


def test_a_delivered_message_names_its_job_and_the_queue_it_came_from() -> None:
    # kombu's unacked entry wraps the message as it sat in the queue
    captured = Path(__file__).parents[1] / "prefetch" / "kombu_encode_message.json"
    message = json.loads(captured.read_text())
    entry = json.dumps([message, "", "encode.cpu"])
    assert delivery(entry) == ("fcd8c77f5a0f3504fa47", "encode.cpu")
    assert delivery("not json") is None
    assert delivery(json.dumps({"headers": {}})) is None
