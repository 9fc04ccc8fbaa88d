"""The Redis adapter against a real redis-server and messages kombu itself publishes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Exchange, Queue

from host_agent.redis_state import RedisState
from tests.support.redis_proc import RedisProcess
from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import job_key, worker_key
from worker.errors import BrokerError

pytestmark = pytest.mark.integration

STEPS = list(range(10))


@pytest.fixture
def raw(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def state(redis_server: RedisProcess, raw: redis.Redis) -> Iterator[RedisState]:
    adapter = RedisState(redis_server.url)
    yield adapter
    adapter.close()


def publish(url: str, queue: str, priorities: list[int], steps: list[int] = STEPS) -> None:
    """Send one message per priority to ``queue`` the way Celery's producer does."""
    exchange = Exchange(queue, type="direct")
    declared = Queue(queue, exchange, routing_key=queue, max_priority=9)
    with Connection(url, transport_options={"priority_steps": steps}) as conn:
        producer = conn.Producer()
        for priority in priorities:
            producer.publish(
                {"job": priority},
                exchange=exchange,
                routing_key=queue,
                declare=[declared],
                priority=priority,
                serializer="json",
            )


def test_depth_counts_every_priority_list_kombu_writes(
    state: RedisState, redis_server: RedisProcess
) -> None:
    publish(redis_server.url, "encode.gpu", [0, 1, 5, 9])
    publish(redis_server.url, "encode.gpu", [2, 7], steps=[0, 3, 6, 9])
    publish(redis_server.url, "encode.cpu", [0, 0, 0])
    assert state.queue_depth(["encode.gpu"]) == 6
    assert state.queue_depth(["encode.cpu"]) == 3
    assert state.queue_depth(["encode.gpu", "encode.cpu"]) == 9


def test_message_taken_but_not_acked_is_in_flight_for_its_queue_only(
    state: RedisState, redis_server: RedisProcess
) -> None:
    publish(redis_server.url, "encode.gpu", [5])
    queue = Queue("encode.gpu", Exchange("encode.gpu", type="direct"), routing_key="encode.gpu")
    with Connection(redis_server.url, transport_options={"priority_steps": STEPS}) as conn:
        simple = conn.SimpleQueue(queue, no_ack=False)
        message = simple.get(timeout=5)
        assert state.queue_depth(["encode.gpu"]) == 0
        assert state.in_flight(["encode.gpu"]) == 1
        assert state.in_flight(["encode.cpu"]) == 0
        message.ack()
        simple.close()
    assert state.in_flight(["encode.gpu"]) == 0


def test_a_dead_workers_delivery_of_an_ended_job_is_not_in_flight(
    state: RedisState, redis_server: RedisProcess, raw: redis.Redis
) -> None:
    """A VM killed mid-encode leaves its delivery in kombu's unacked hash for hours; once
    the job was requeued and ended, that delivery must not keep the VM from idling."""
    exchange = Exchange("encode.cpu", type="direct")
    queue = Queue("encode.cpu", exchange, routing_key="encode.cpu")
    with Connection(redis_server.url, transport_options={"priority_steps": STEPS}) as conn:
        conn.Producer().publish({"job": 1}, exchange=exchange, routing_key="encode.cpu",
                                declare=[queue], headers={"id": "job1-attempt1"},
                                serializer="json")  # fmt: skip
        simple = conn.SimpleQueue(queue, no_ack=False)
        simple.get(timeout=5)  # taken by a worker that then dies: never acknowledged
        for job_state, counted in [("encoding", 1), ("queued", 1), ("done", 0), ("failed", 0)]:
            raw.hset(job_key("job1"), "state", job_state)
            assert state.in_flight(["encode.cpu"]) == counted, job_state
        raw.delete(job_key("job1"))  # a job the registry does not know: still counted
        assert state.in_flight(["encode.cpu"]) == 1
        simple.close()


def test_worker_heartbeat_is_read_and_a_garbled_one_is_ignored(
    state: RedisState, raw: redis.Redis
) -> None:
    beat = WorkerHeartbeat(hostname="kamado-gpu", queues=["encode.gpu"], current_job="j1")
    raw.set(worker_key("kamado-gpu"), beat.model_dump_json())
    found = state.worker_heartbeat("kamado-gpu")
    assert found is not None and found.current_job == "j1"
    raw.set(worker_key("kamado-gpu"), b"{not json")
    assert state.worker_heartbeat("kamado-gpu") is None
    assert state.worker_heartbeat("nobody") is None


def test_host_heartbeat_expires_after_its_ttl(state: RedisState) -> None:
    state.publish_host(HostHeartbeat(name="host1", vm_state="running"), ttl=0.3)
    found = state.host_heartbeat("host1")
    assert found is not None and found.vm_state == "running"
    time.sleep(0.4)
    assert state.host_heartbeat("host1") is None


def test_dead_redis_is_a_broker_error_and_a_restart_is_survived(own_redis: RedisProcess) -> None:
    adapter = RedisState(own_redis.url, timeout=1)
    adapter.ping()
    own_redis.kill()
    with pytest.raises(BrokerError, match=r"Redis at redis://127\.0\.0\.1:\d+/0: cannot"):
        adapter.queue_depth(["encode.gpu"])
    own_redis.start()
    assert adapter.queue_depth(["encode.gpu"]) == 0
    adapter.close()


def test_password_never_appears_in_the_error() -> None:
    adapter = RedisState("redis://:hunter2@127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(BrokerError) as info:
        adapter.ping()
    assert "hunter2" not in str(info.value)
    adapter.close()
