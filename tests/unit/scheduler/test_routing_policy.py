"""The routing policy as pure functions: which queue, and which waiting jobs move."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.cluster import delivery, wake_delay
from scheduler.routing import Cluster, Lane, Pending, initial_queue, plan
from worker.heartbeat import HostHeartbeat
from worker.profiles import BUILTIN_PROFILES
from worker.settings_scheduler import RoutingSettings

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


def test_a_lane_without_slots_never_finishes() -> None:
    assert math.isinf(Lane([], 1.0).finish(10))


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
