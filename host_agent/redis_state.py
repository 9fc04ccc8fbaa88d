"""What the host agent reads and writes in Redis: the only module that imports ``redis``.

Queue depth follows kombu's Redis transport, whose layout worker/broker/keys.py spells:
one list per queue and priority level, and the ``unacked`` hash of messages a worker has
taken but not acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis
from pydantic import ValidationError

from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import UNACKED, host_key, job_key, queue_lists, worker_key
from worker.broker.registry import job_id_of
from worker.errors import BrokerError
from worker.jobs import JobState
from worker.settings.model import mask_url

ENDED_STATES = frozenset(s.value for s in JobState if s.final)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


class RedisState:
    """A connection to the broker's Redis, reconnecting by itself after a restart."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.shown_url = mask_url(url)
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=10,
        )

    def _fail(self, operation: str, error: redis.RedisError) -> BrokerError:
        return BrokerError(f"Redis at {self.shown_url}: cannot {operation}: {error}")

    def ping(self) -> None:
        """Raise BrokerError unless Redis answers."""
        try:
            self._client.ping()
        except redis.RedisError as e:
            raise self._fail("ping", e) from e

    def queue_depth(self, queues: Sequence[str]) -> int:
        """How many messages wait in these queues, over every priority."""
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key in queue_lists(queues):
                    pipe.llen(key)
                sizes = pipe.execute()
        except redis.RedisError as e:
            raise self._fail("read queue lengths", e) from e
        return sum(int(size) for size in sizes)

    def in_flight(self, queues: Sequence[str]) -> int:
        """How many messages of these queues a worker holds without acknowledging yet.

        A delivery whose job has ended does not count: a worker killed with its VM leaves
        its message in ``unacked`` until kombu's visibility timeout (hours), long after
        the job was requeued and done; counted, it would keep the VM from ever idling.
        """
        try:
            values = self._client.hvals(UNACKED)
        except redis.RedisError as e:
            raise self._fail("read unacknowledged messages", e) from e
        wanted = set(queues)
        held: list[str | None] = []
        for raw in values:
            try:
                _message, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if routing_key in wanted or exchange in wanted:
                held.append(job_id_of(raw))
        return len(held) - self._ended(held)

    def _ended(self, job_ids: list[str | None]) -> int:
        """How many of these jobs the registry holds as ended (done, failed, cancelled)."""
        known = [j for j in job_ids if j]
        if not known:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for job_id in known:
            pipe.hget(job_key(job_id), "state")
        try:
            states = pipe.execute()
        except redis.RedisError as e:
            raise self._fail("read job states", e) from e
        return sum(1 for state in states if _text(state) in ENDED_STATES)

    def worker_heartbeat(self, hostname: str) -> WorkerHeartbeat | None:
        """The worker's heartbeat, or None when it expired or never came."""
        try:
            raw = self._client.get(worker_key(hostname))
        except redis.RedisError as e:
            raise self._fail("read a worker heartbeat", e) from e
        if raw is None:
            return None
        try:
            return WorkerHeartbeat.model_validate_json(raw)
        except ValidationError:
            return None

    def publish_host(self, heartbeat: HostHeartbeat, ttl: float) -> None:
        """Write the host agent's heartbeat, expiring after ``ttl`` seconds."""
        try:
            self._client.set(
                host_key(heartbeat.name), heartbeat.model_dump_json(), px=int(ttl * 1000)
            )
        except redis.RedisError as e:
            raise self._fail("publish the host heartbeat", e) from e

    def host_heartbeat(self, name: str) -> HostHeartbeat | None:
        """A host agent's last heartbeat, or None."""
        try:
            raw = self._client.get(host_key(name))
        except redis.RedisError as e:
            raise self._fail("read a host heartbeat", e) from e
        if raw is None:
            return None
        try:
            return HostHeartbeat.model_validate_json(raw)
        except ValidationError:
            return None

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
