"""How fast the host agent reacts: job queued → start call, and last job done → shutdown call.

Runs the real agent loop against a real redis-server and libvirt's test driver (so the
VM itself boots instantly and only the agent's own latency is measured), with the
default [host] settings except the idle time, which is shortened so a run takes seconds:
the shutdown figure is reported as its offset from the idle time, which does not depend
on how long the idle time is (the agent notices a job's end at its next poll and counts
idle time from the last poll that saw work, so the offset lies within ±poll_interval).

    python bench/wake.py [--rounds 5] [--idle 3] [--poll SECONDS]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host_agent.agent import Agent
from host_agent.lifecycle import Hypervisor
from host_agent.redis_state import RedisState
from tests.support.redis_proc import RedisProcess
from worker.broker.heartbeat import WorkerHeartbeat
from worker.broker.keys import worker_key
from worker.settings.host import HostSettings

QUEUE = "encode.gpu"
TARGET_WAKE = 2.0


def wait_action(agent: Agent, count: int, timeout: float) -> float:
    """The monotonic time of the agent's ``count``-th action."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(agent.history) >= count:
            return agent.history[count - 1].at
        time.sleep(0.001)
    raise SystemExit(f"the agent did not act within {timeout}s: {list(agent.history)}")


def run(rounds: int, idle: float, poll: float | None) -> None:
    """Measure ``rounds`` wake-ups and shutdowns and print them against the settings."""
    defaults = HostSettings()
    overrides: dict[str, object] = {"libvirt_uri": "test:///default", "idle_shutdown": idle}
    if poll is not None:
        overrides["poll_interval"] = poll
    settings = HostSettings.model_validate(defaults.model_dump() | overrides)
    name = settings.vm.name
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(Path(tmp)).start()
        client = redis.Redis.from_url(server.url)
        keeper = Hypervisor("test:///default")  # keeps the shared test driver state alive
        keeper.open()
        agent = Agent(settings, state=RedisState(server.url), load=lambda: 0.0)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        wakes: list[float] = []
        offsets: list[float] = []
        try:
            time.sleep(settings.poll_interval * 1.5)
            for index in range(rounds):
                # Jobs arrive at arbitrary moments relative to the agent's poll.
                time.sleep(settings.poll_interval * ((index * 0.37) % 1))
                queued_at = time.monotonic()
                client.lpush(QUEUE, '{"body": "e30="}')
                wakes.append(wait_action(agent, 2 * index + 1, 30) - queued_at)
                # The guest's worker takes the job, runs it, and finishes.
                client.delete(QUEUE)
                beat = WorkerHeartbeat(hostname=name, queues=[QUEUE], current_job="job")
                client.set(worker_key(name), beat.model_dump_json())
                time.sleep(settings.poll_interval * (1.1 + (index * 0.29) % 1))
                done_at = time.monotonic()
                client.set(
                    worker_key(name),
                    beat.model_copy(update={"current_job": None}).model_dump_json(),
                )
                stopped_at = wait_action(agent, 2 * index + 2, idle + 30)
                offsets.append(stopped_at - done_at - idle)
        finally:
            agent.stop()
            thread.join(10)
            if keeper.exists(name):
                if keeper.status(name).active:
                    keeper.destroy(name)
                keeper.undefine(name)
            keeper.close()
            client.close()
            server.stop()
    report(settings, wakes, offsets)


def report(settings: HostSettings, wakes: list[float], offsets: list[float]) -> None:
    """Print both figures with the settings they depend on."""

    def fmt(values: list[float]) -> str:
        return (
            f"min {min(values):.3f}s  median {statistics.median(values):.3f}s  "
            f"max {max(values):.3f}s"
        )

    print(
        f"poll_interval {settings.poll_interval:g}s, idle_shutdown {settings.idle_shutdown:g}s "
        f"(default {HostSettings().idle_shutdown:g}s), {len(wakes)} rounds"
    )
    print(f"job queued → start call:          {fmt(wakes)}   (target ≤ {TARGET_WAKE:g}s)")
    print(f"last job done → shutdown call:    idle_shutdown + offset, offset {fmt(offsets)}")
    verdict = "meets" if max(wakes) <= TARGET_WAKE else "MISSES"
    print(f"wake {verdict} the {TARGET_WAKE:g}s target")


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle", type=float, default=3.0, help="idle_shutdown for the run, s")
    parser.add_argument("--poll", type=float, default=None, help="poll_interval (default: 1)")
    args = parser.parse_args()
    run(args.rounds, args.idle, args.poll)


if __name__ == "__main__":
    main()
