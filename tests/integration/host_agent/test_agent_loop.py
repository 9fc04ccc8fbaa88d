"""The agent loop end to end: a real redis-server, libvirt's test driver, real timing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from host_agent.agent import Agent
from host_agent.lifecycle import Hypervisor, VmState
from host_agent.redis_state import RedisState
from tests.integration.host_agent.conftest import host_settings, wait_for
from tests.support.redis_proc import RedisProcess
from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import host_key, worker_key

pytestmark = pytest.mark.integration

QUEUE = "encode.gpu"


class Running:
    """An agent on its own thread, stopped and cleaned up at the end of the test."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.thread = threading.Thread(target=agent.run, name="host-agent", daemon=True)
        self.thread.start()

    def actions(self) -> list[str]:
        return [record.action for record in list(self.agent.history)]

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def raw(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def start_agent(vm_name: str, observer: Hypervisor) -> Iterator[Any]:
    running: list[Running] = []

    def start(url: str, **overrides: Any) -> Running:
        agent = Agent(host_settings(vm_name, **overrides), state=RedisState(url, timeout=1))
        running.append(Running(agent))
        wait_for(lambda: observer.exists(vm_name), timeout=5)
        return running[-1]

    yield start
    for item in running:
        item.stop()
    if observer.exists(vm_name):
        if observer.status(vm_name).active:
            observer.destroy(vm_name)
        observer.undefine(vm_name)


def state_of(observer: Hypervisor, name: str) -> VmState:
    return observer.status(name).state


def enqueue(client: redis.Redis, queue: str = QUEUE) -> None:
    # The shape kombu's Redis transport gives a message: a JSON string on the queue's list.
    client.lpush(queue, '{"body": "e30=", "properties": {"priority": 5}}')


def test_work_appearing_starts_the_vm_and_idle_shuts_it_down(
    start_agent: Any,
    raw: redis.Redis,
    redis_server: RedisProcess,
    observer: Hypervisor,
    vm_name: str,
) -> None:
    agent = start_agent(redis_server.url)
    wait_for(lambda: state_of(observer, vm_name) is VmState.SHUTOFF)
    enqueue(raw)
    wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=3)
    raw.delete(QUEUE)
    wait_for(lambda: state_of(observer, vm_name) is VmState.SHUTOFF, timeout=5)
    assert agent.actions() == ["start", "shutdown"]
    assert agent.agent.history[0].reason == "1 job(s) waiting"


def test_running_job_keeps_the_vm_up_past_the_idle_time(
    start_agent: Any,
    raw: redis.Redis,
    redis_server: RedisProcess,
    observer: Hypervisor,
    vm_name: str,
) -> None:
    agent = start_agent(redis_server.url, idle_shutdown=0.3)
    enqueue(raw)
    wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=3)
    beat = WorkerHeartbeat(hostname=f"celery@{vm_name}", queues=[QUEUE], current_job="job-1")
    raw.set(worker_key(f"celery@{vm_name}"), beat.model_dump_json(), px=60_000)
    raw.delete(QUEUE)
    threading.Event().wait(1.0)
    assert state_of(observer, vm_name) is VmState.RUNNING, "never stop mid-encode"
    idle = beat.model_copy(update={"current_job": None})
    raw.set(worker_key(f"celery@{vm_name}"), idle.model_dump_json())
    wait_for(lambda: state_of(observer, vm_name) is VmState.SHUTOFF, timeout=3)
    assert agent.actions() == ["start", "shutdown"]


def test_vm_destroyed_behind_the_agents_back_is_restarted(
    start_agent: Any,
    raw: redis.Redis,
    redis_server: RedisProcess,
    observer: Hypervisor,
    vm_name: str,
) -> None:
    agent = start_agent(redis_server.url, idle_shutdown=60)
    enqueue(raw)
    wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=3)
    observer.destroy(vm_name)
    wait_for(lambda: agent.actions() == ["start", "start"], timeout=3)
    assert state_of(observer, vm_name) is VmState.RUNNING
    assert agent.agent.history[-1].reason == "restart after the VM stopped (destroyed)"


def test_agent_gives_up_after_the_restart_limit_and_says_so(
    start_agent: Any,
    raw: redis.Redis,
    redis_server: RedisProcess,
    observer: Hypervisor,
    vm_name: str,
) -> None:
    agent = start_agent(redis_server.url, idle_shutdown=60, restart_limit=2, restart_backoff=0)
    enqueue(raw)
    for _ in range(3):
        wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=3)
        observer.destroy(vm_name)
    wait_for(lambda: "gave up" in agent.actions(), timeout=3)
    beat = wait_for(lambda: raw.get(host_key(f"agent-{vm_name}")), timeout=3)
    published = HostHeartbeat.model_validate_json(beat)
    assert published.last_action.startswith("gave up: 2 restarts")
    assert published.vm_state == "shutoff"


def test_heartbeat_shows_the_vm_state_and_last_action_with_a_ttl(
    start_agent: Any,
    raw: redis.Redis,
    redis_server: RedisProcess,
    observer: Hypervisor,
    vm_name: str,
) -> None:
    start_agent(redis_server.url, idle_shutdown=60)
    enqueue(raw)
    key = host_key(f"agent-{vm_name}")

    def running_beat() -> HostHeartbeat | None:
        raw_beat = raw.get(key)
        beat = HostHeartbeat.model_validate_json(raw_beat) if raw_beat else None
        return beat if beat and beat.vm_state == "running" else None

    beat = wait_for(running_beat, timeout=3)
    assert beat.last_action == "start: 1 job(s) waiting"
    assert beat.last_action_at is not None
    assert 0 < raw.pttl(key) <= 600


def test_closed_libvirt_connection_is_reopened(
    vm_name: str, raw: redis.Redis, redis_server: RedisProcess, observer: Hypervisor
) -> None:
    agent = Agent(host_settings(vm_name, idle_shutdown=60), state=RedisState(redis_server.url))
    try:
        agent.tick()
        enqueue(raw)
        agent.tick()
        assert state_of(observer, vm_name) is VmState.RUNNING
        # Close the agent's libvirt handle under it, as a daemon restart would.
        agent.hypervisor._conn.close()
        agent.tick()
        assert agent.hypervisor.alive
        assert agent.last_status is not None and agent.last_status.state is VmState.RUNNING
        observer.destroy(vm_name)

        def restarted() -> bool:
            agent.tick()
            return [r.action for r in agent.history] == ["start", "start"]

        wait_for(restarted, timeout=3)
        assert state_of(observer, vm_name) is VmState.RUNNING
    finally:
        agent.hypervisor.close()
        observer.destroy(vm_name)
        observer.undefine(vm_name)


def test_redis_restart_is_survived_and_new_work_still_starts_the_vm(
    start_agent: Any, own_redis: RedisProcess, observer: Hypervisor, vm_name: str
) -> None:
    agent = start_agent(own_redis.url)
    wait_for(lambda: agent.agent.last_status is not None)
    own_redis.kill()
    threading.Event().wait(0.5)
    assert state_of(observer, vm_name) is VmState.SHUTOFF
    own_redis.start()
    client = redis.Redis.from_url(own_redis.url)
    enqueue(client)
    client.close()
    wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=5)


def test_a_guest_that_never_consumes_is_shut_down_and_not_restarted_at_once(
    start_agent: Any,
    raw: redis.Redis,
    redis_server: RedisProcess,
    observer: Hypervisor,
    vm_name: str,
) -> None:
    agent = start_agent(redis_server.url, consume_timeout=0.5)
    enqueue(raw)  # a hardware-only job nobody takes: the guest serves no encode.gpu
    beat = WorkerHeartbeat(hostname=f"celery@{vm_name}", queues=["encode.cpu"])
    raw.set(worker_key(f"celery@{vm_name}"), beat.model_dump_json(), px=60_000)
    wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=3)
    wait_for(lambda: state_of(observer, vm_name) is VmState.SHUTOFF, timeout=5)
    threading.Event().wait(0.3)  # shorter than the 0.5 s hold
    assert state_of(observer, vm_name) is VmState.SHUTOFF
    assert agent.actions()[:2] == ["start", "shutdown"]
    reason = agent.agent.history[1].reason
    assert f"no worker celery@{vm_name} consuming encode.gpu within 0.5s" in reason
    raw_host = raw.get(host_key(f"agent-{vm_name}"))
    assert raw_host is not None
    published = HostHeartbeat.model_validate_json(raw_host)
    assert published.held_until is not None, "routing learns the GPU will not come soon"
    raw.set(worker_key(f"celery@{vm_name}"), beat.model_copy(update={"queues": [QUEUE]})
            .model_dump_json(), px=60_000)  # fmt: skip
    wait_for(lambda: state_of(observer, vm_name) is VmState.RUNNING, timeout=3)
    threading.Event().wait(1.0)
    assert state_of(observer, vm_name) is VmState.RUNNING, "a consuming worker keeps it up"
