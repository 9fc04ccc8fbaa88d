"""What the scheduler reads and writes in Redis beyond the registry's own API.

Queue contents follow kombu's Redis transport: a queue is a list per priority level
("name" for 0, "name\\x06\\x16<n>" above), LPUSHed by producers and BRPOPped by workers
in level order, so the oldest message of the most urgent level is delivered first.
Every call goes through :meth:`Registry.call`, which turns Redis errors into BrokerError.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pydantic import ValidationError

from scheduler.submission import Submission
from worker.broker.heartbeat import HostHeartbeat
from worker.broker.keys import (
    EPGSTATION_PENDING,
    ESTIMATES,
    FLAGS,
    INDEX,
    PRIORITY_STEPS,
    host_key,
    job_key,
    queue_list,
)
from worker.broker.registry import Registry, job_id_of

# Take one exact message off a queue and point the job's record at the new queue, in one
# step: if a worker popped the message first, nothing changes.
MOVE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], 'queue', ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Message:
    """One message waiting in a queue: its job and where it sits."""

    job_id: str
    key: str
    raw: str

    @property
    def task_id(self) -> str | None:
        """The Celery task id of this message (what Flower lists it under)."""
        try:
            headers = json.loads(self.raw).get("headers") or {}
        except (ValueError, AttributeError):
            return None
        found = headers.get("id") if isinstance(headers, dict) else None
        return str(found) if found else None


class BrokerState:
    """The scheduler's view of queues, host agents, estimates and flags."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.client = registry.client
        self._move = self.client.register_script(MOVE)

    def ping(self) -> None:
        """Raise BrokerError unless Redis answers."""
        self.registry.call("reach the broker", self.client.ping)

    def waiting(self, queue: str) -> list[Message]:
        """Messages waiting in a queue, in the order workers will take them."""
        pipe = self.client.pipeline(transaction=False)
        for level in PRIORITY_STEPS:
            pipe.lrange(queue_list(queue, level), 0, -1)
        rows = self.registry.call("read a queue", pipe.execute)
        found = []
        for level, raws in zip(PRIORITY_STEPS, rows, strict=True):
            for raw in reversed(raws):
                if job_id := job_id_of(raw):
                    found.append(Message(job_id, queue_list(queue, level), raw))
        return found

    def move(self, message: Message, job_id: str, queue: str) -> bool:
        """Take a message off its queue for re-publishing to ``queue``; False if it is gone."""
        keys = [message.key, job_key(job_id)]
        return bool(
            self.registry.call("move a job", self._move, keys=keys, args=[message.raw, queue])
        )

    def point_at(self, job_id: str, queue: str) -> None:
        """Set the queue a job's record names (where it is published next)."""
        self.registry.call("set a job's queue", self.client.hset, job_key(job_id), "queue", queue)

    def remove(self, job_id: str, queues: list[str]) -> int:
        """Drop every waiting message of a job (after it was cancelled)."""
        return len(self.remove_messages(job_id, queues))

    def remove_messages(self, job_id: str, queues: list[str]) -> list[Message]:
        """Drop every waiting message of a job; the messages this call removed."""
        removed = []
        for queue in queues:
            for message in self.waiting(queue):
                if message.job_id == job_id and self.registry.call(
                    "remove a message", self.client.lrem, message.key, 1, message.raw
                ):
                    removed.append(message)
        return removed

    def hosts(self) -> list[HostHeartbeat]:
        """Every host agent whose heartbeat is alive."""
        keys = sorted(self.registry.call("list hosts", self.client.keys, host_key("*")))
        values = self.registry.call("read host heartbeats", self.client.mget, keys) if keys else []
        beats = []
        for value in values:
            if not value:
                continue
            try:
                beats.append(HostHeartbeat.model_validate_json(value))
            except ValidationError:
                continue  # another version's heartbeat: not ours to judge
        return beats

    def remember_registration(self, job_id: str) -> None:
        """Note that the job's output goes into EPGStation's library once it is done
        (:mod:`scheduler.epgstation.register` does it)."""
        entry = json.dumps({"since": time.time(), "next": 0.0, "tries": 0})
        self.registry.call("remember a registration", self.client.hsetnx, EPGSTATION_PENDING,
                           job_id, entry)  # fmt: skip

    def note(self, submissions: list[Submission]) -> None:
        """Store the length estimate and flags of submitted jobs (for routing and status)."""
        pipe = self.client.pipeline(transaction=False)
        for sub in submissions:
            if sub.estimate_s is not None:
                pipe.hset(ESTIMATES, sub.job.id, str(sub.estimate_s))
            if sub.flags:
                pipe.hget(FLAGS, sub.job.id)
        rows = self.registry.call("store estimates", pipe.execute)
        flagged = [s for s in submissions if s.flags]
        if not flagged:
            return
        old = rows[-len(flagged) :]
        pipe = self.client.pipeline(transaction=False)
        for sub, raw in zip(flagged, old, strict=True):
            merged = list(dict.fromkeys([*(json.loads(raw) if raw else []), *sub.flags]))
            pipe.hset(FLAGS, sub.job.id, json.dumps(merged, ensure_ascii=False))
        self.registry.call("store flags", pipe.execute)

    def estimates(self, job_ids: list[str]) -> dict[str, float]:
        """Known length estimates (seconds of programme) of these jobs."""
        if not job_ids:
            return {}
        values = self.registry.call("read estimates", self.client.hmget, ESTIMATES, job_ids)
        return {j: float(v) for j, v in zip(job_ids, values, strict=True) if v}

    def flags(self, job_ids: list[str]) -> dict[str, list[str]]:
        """Flags noted on these jobs."""
        if not job_ids:
            return {}
        values = self.registry.call("read flags", self.client.hmget, FLAGS, job_ids)
        return {j: json.loads(v) for j, v in zip(job_ids, values, strict=True) if v}

    def known(self, job_ids: list[str]) -> set[str]:
        """Which of these job ids the registry already holds."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(job_key(job_id))
        rows = self.registry.call("look up jobs", pipe.execute)
        return {j for j, hit in zip(job_ids, rows, strict=True) if hit}

    def ids_with_prefix(self, prefix: str) -> list[str]:
        """Every job id in the registry that starts with ``prefix``."""
        ids = self.registry.call("list jobs", self.client.zrange, INDEX, 0, -1)
        return [i for i in ids if i.startswith(prefix)]
