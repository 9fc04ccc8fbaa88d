"""The job registry in Redis: the source of truth for jobs; Celery only delivers work.

Each job is a hash (state, attempts, the attempt and worker holding it, progress, output,
error) with its attempts alongside. An attempt runs only while it holds the job's lease,
a key with a TTL that its keeper renews; every state change an attempt makes is checked
against that lease in one Lua script, so a stale attempt (a paused VM, a cut network)
can never mark a job done or commit its output.

This module is the only one in worker/ that imports redis.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field

from worker.broker.counters import failure_reason
from worker.broker.keys import (
    ACTIVE,
    ATTEMPT_FAILURES,
    ENDED,
    FLAGS,
    INDEX,
    UNACKED,
    UNACKED_INDEX,
    attempts_key,
    job_key,
    lease_key,
    queue_lists,
)
from worker.broker.registry_scripts import ACQUIRE, CANCEL, FINISH, RECORD, RENEW, SETTLE, UPDATE
from worker.errors import BrokerAuthError, BrokerError
from worker.jobs import Job, JobState, now
from worker.progress import Progress
from worker.settings.model import mask_url

__all__ = [
    "AttemptRecord",
    "JobRecord",
    "Registry",
    "check_login",
    "job_id_of",
    "redis_client",
    "task_job_id",
]

RUNNING_STATES = (JobState.STAGING, JobState.ENCODING, JobState.VERIFYING)


def redis_client(url: str, *, socket_timeout: float = 10.0) -> redis.Redis:
    """A redis-py client for a kamado broker URL (redis://, rediss://, redis+socket://)."""
    if url.startswith("redis+socket://"):
        path = url.removeprefix("redis+socket://").split("?", 1)[0]
        return redis.Redis(
            unix_socket_path=path, socket_timeout=socket_timeout, decode_responses=True
        )
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        decode_responses=True,
        health_check_interval=25,
    )


def refused_login(error: redis.RedisError) -> bool:
    """True when Redis refused the credentials (WRONGPASS, NOAUTH): retrying cannot help."""
    text = str(error)
    return isinstance(error, redis.AuthenticationError) or text.startswith(
        ("WRONGPASS", "NOAUTH", "invalid username-password pair")
    )


def login_refused(url: str, error: Exception) -> BrokerAuthError:
    """The error for a broker that refused kamado's login, with the URL form that works."""
    return BrokerAuthError(
        f"broker {mask_url(url)} refused the login: {error}. deploy/redis/kamado.conf turns "
        "Redis's default user off, so the URL names the ACL user and its password: "
        "redis://kamado:PASSWORD@HOST:6379/0 (KAMADO_BROKER_URL in /etc/kamado/kamado.env)"
    )


def check_login(url: str, *, timeout: float = 5.0) -> None:
    """Raise BrokerAuthError when the broker refuses these credentials.

    A broker that cannot be reached is not an error here: workers wait for it to come.
    """
    client = redis_client(url, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as e:
        if refused_login(e):
            raise login_refused(url, e) from e
    finally:
        client.close()


class AttemptRecord(BaseModel):
    """One attempt at a job: who ran it, on what, how it ended."""

    model_config = ConfigDict(frozen=True)

    number: int
    attempt_id: str
    worker: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = "running"
    backend: str | None = None
    error: str | None = None
    kind: str | None = None


class JobRecord(BaseModel):
    """A job as the registry holds it (what `kamado status --json` prints)."""

    model_config = ConfigDict(frozen=True)

    job: Job
    state: JobState
    queue: str = ""
    attempts: int = 0
    worker: str | None = None
    attempt_id: str | None = None
    backend: str | None = None
    progress: Progress | None = None
    error: str | None = None
    kind: str | None = None
    result: dict[str, Any] | None = None
    cancel_requested: bool = False
    created_at: datetime | None = None
    # When it was last queued: its first submission, or the retry or forced re-run since.
    queued_at: datetime | None = None
    updated_at: datetime | None = None
    history: list[AttemptRecord] = Field(default_factory=list)

    @property
    def id(self) -> str:
        """The job id."""
        return self.job.id


@dataclass(frozen=True)
class Acquired:
    """The answer to an attempt asking to run a job."""

    status: str  # ok, held, final, cancelled, exhausted, missing
    detail: str = ""
    attempt: int = 0


def _iso(value: datetime | None = None) -> str:
    return (value or now()).isoformat()


class Registry:
    """Jobs, attempts and leases in Redis."""

    def __init__(self, client: redis.Redis, *, lease_ttl: float = 60.0, max_attempts: int = 3):
        self.client = client
        self.lease_ttl = lease_ttl
        self.max_attempts = max_attempts
        self._record = client.register_script(RECORD)
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._update = client.register_script(UPDATE)
        self._finish = client.register_script(FINISH)
        self._cancel = client.register_script(CANCEL)
        self._settle = client.register_script(SETTLE)

    @classmethod
    def connect(cls, url: str, *, lease_ttl: float = 60.0, max_attempts: int = 3) -> Registry:
        """A registry on the broker at ``url``."""
        return cls(redis_client(url), lease_ttl=lease_ttl, max_attempts=max_attempts)

    def close(self) -> None:
        """Close the Redis connections."""
        self.client.close()

    def _ended(self, job_id: str) -> None:
        with contextlib.suppress(redis.RedisError):  # a hint: waiters poll anyway
            self.client.publish(ENDED, job_id)

    def endings(self) -> Endings:
        """A subscription that wakes when some job may have ended (see :class:`Endings`)."""
        return Endings(self.client)

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one Redis call, turning its errors into BrokerError naming ``what``."""
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as e:
            raise BrokerError(f"job registry: cannot {what}: {e}") from e

    def flags(self, job_id: str) -> list[str]:
        """What the scheduler flagged on the job over all its submissions (a recording
        reported failed by a later hook is flagged here, not in the job's first record)."""
        raw = self.call("read flags", self.client.hget, FLAGS, job_id)
        return [str(f) for f in json.loads(raw)] if raw else []

    @property
    def _ttl_ms(self) -> int:
        return int(self.lease_ttl * 1000)

    # -- submission ---------------------------------------------------------------------

    def record(
        self, job: Job, *, queue: str, force: bool = False, held: bool = False
    ) -> tuple[str, JobState]:
        """Record a submitted job; returns (created|exists|reset, state before)."""
        state = JobState.HELD if held else JobState.QUEUED
        keys = [job_key(job.id), INDEX, ACTIVE]
        args = [
            job.model_dump_json(), state.value, queue, _iso(),
            job.submitted_at.timestamp(), "1" if force else "0", job.id,
        ]  # fmt: skip
        outcome, before = self.call("record a job", self._record, keys=keys, args=args)
        return str(outcome), JobState(before)

    # -- attempts -----------------------------------------------------------------------

    def acquire(self, job_id: str, attempt_id: str, worker: str) -> Acquired:
        """Take the job's lease for this attempt, unless it is final, held or exhausted."""
        keys = [job_key(job_id), lease_key(job_id), ACTIVE]
        args = [attempt_id, worker, self._ttl_ms, _iso(), self.max_attempts, job_id]
        status, detail = self.call("acquire a lease", self._acquire, keys=keys, args=args)
        if status != "ok":
            return Acquired(str(status), str(detail))
        number = int(detail)
        self._close_lost_attempts(job_id)
        record = AttemptRecord(
            number=number, attempt_id=attempt_id, worker=worker, started_at=now()
        )
        self.call(
            "record an attempt",
            self.client.hset,
            attempts_key(job_id),
            attempt_id,
            record.model_dump_json(),
        )
        return Acquired("ok", attempt=number)

    def _close_lost_attempts(self, job_id: str) -> None:
        """Attempts that never ended lost their lease: their worker died or was cut off."""
        for record in self.history(job_id):
            if record.ended_at is None:
                self._end_attempt(
                    job_id,
                    record,
                    "lost",
                    "the worker stopped renewing its lease (killed, crashed or cut off)",
                    "lost",
                )

    def _end_attempt(
        self, job_id: str, record: AttemptRecord, outcome: str, error: str | None, kind: str | None
    ) -> None:
        ended = record.model_copy(
            update={"ended_at": now(), "outcome": outcome, "error": error, "kind": kind}
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(attempts_key(job_id), record.attempt_id, ended.model_dump_json())
        reason = failure_reason(outcome, kind)
        if reason is not None:
            # Counted where it happens, in the same transaction: a counter, never rebuilt
            # from the job records (which expire and fall out of the scan window).
            pipe.hincrby(ATTEMPT_FAILURES, reason, 1)
        self.call("end an attempt", pipe.execute)

    def renew(self, job_id: str, attempt_id: str) -> bool:
        """Extend this attempt's lease; False when it no longer holds it."""
        result = self.call(
            "renew a lease", self._renew, keys=[lease_key(job_id)], args=[attempt_id, self._ttl_ms]
        )
        return bool(result)

    def holds(self, job_id: str, attempt_id: str) -> bool:
        """True while this attempt holds the job's lease."""
        return bool(self.call("read a lease", self.client.get, lease_key(job_id)) == attempt_id)

    def lease_alive(self, job_id: str) -> bool:
        """True while any attempt holds the job's lease."""
        return bool(self.call("read a lease", self.client.exists, lease_key(job_id)))

    def update(self, job_id: str, attempt_id: str, progress: Progress) -> bool:
        """Store an attempt's progress and state (only while it holds the lease)."""
        keys = [job_key(job_id), lease_key(job_id)]
        args = [
            attempt_id, progress.state.value, progress.model_dump_json(),
            progress.backend or "", _iso(),
        ]  # fmt: skip
        return bool(self.call("store progress", self._update, keys=keys, args=args))

    def finish(
        self,
        job_id: str,
        attempt_id: str,
        state: JobState,
        *,
        error: str | None = None,
        kind: str | None = None,
        result: dict[str, Any] | None = None,
        backend: str | None = None,
    ) -> bool:
        """End an attempt and set the job's state; refused when the lease was lost.

        The attempt's record ends in the same script that sets the state, so whoever
        sees the state also sees the attempt that produced it (never "done" with the
        attempt still "running").
        """
        keys = [job_key(job_id), lease_key(job_id), ACTIVE, attempts_key(job_id), ATTEMPT_FAILURES]
        worker = self.client.hget(job_key(job_id), "worker") or ""
        ended, reason = self._ended_record(job_id, attempt_id, state, error, kind, backend)
        args = [
            attempt_id, state.value, _iso(), error or "", kind or "",
            json.dumps(result) if result else "", worker, job_id, ended, reason,
        ]  # fmt: skip
        ok = bool(self.call("finish an attempt", self._finish, keys=keys, args=args))
        if ok and state.final:
            self._ended(job_id)
        return ok

    def _ended_record(
        self,
        job_id: str,
        attempt_id: str,
        state: JobState,
        error: str | None,
        kind: str | None,
        backend: str | None,
    ) -> tuple[str, str]:
        """The attempt's ended record as JSON and its failure label ('' for none)."""
        raw = self.call("read an attempt", self.client.hget, attempts_key(job_id), attempt_id)
        if not raw:
            return "", ""
        outcome = "done" if state is JobState.DONE else str(state.value)
        if state is JobState.QUEUED:
            outcome = "failed, will retry"
        record = AttemptRecord.model_validate_json(raw)
        ended = record.model_copy(
            update={
                "ended_at": now(), "outcome": outcome, "error": error, "kind": kind,
                "backend": backend,
            }
        )  # fmt: skip
        return ended.model_dump_json(), failure_reason(outcome, kind) or ""

    def end_duplicate(self, job_id: str, attempt_id: str, worker: str, reason: str) -> None:
        """Note a delivery that was dropped without running (the lease was held)."""
        record = AttemptRecord(
            number=0,
            attempt_id=attempt_id,
            worker=worker,
            started_at=now(),
            ended_at=now(),
            outcome="dropped",
            error=reason,
            kind="duplicate",
        )
        self.call(
            "record a dropped delivery",
            self.client.hset,
            attempts_key(job_id),
            attempt_id,
            record.model_dump_json(),
        )

    # -- control ------------------------------------------------------------------------

    def request_cancel(self, job_id: str) -> str:
        """Cancel a job: at once when queued, else flag it for the running attempt."""
        keys = [job_key(job_id), lease_key(job_id), ACTIVE]
        answer = str(self.call("cancel a job", self._cancel, keys=keys, args=[_iso(), job_id]))
        self._ended(job_id)
        return answer

    def cancel_requested(self, job_id: str) -> bool:
        """True when someone asked to cancel the job."""
        return bool(self.call("read a job", self.client.hget, job_key(job_id), "cancel") == "1")

    def settle(self, job_id: str, state: JobState, error: str = "") -> bool:
        """Set the state of a job nobody holds (the reconciler's requeue or give-up)."""
        keys = [job_key(job_id), lease_key(job_id), ACTIVE]
        args = [state.value, _iso(), error, job_id]
        ok = bool(self.call("settle a job", self._settle, keys=keys, args=args))
        if ok and state.final:
            self._ended(job_id)
        return ok

    # -- reading ------------------------------------------------------------------------

    def add_to_result(self, job_id: str, fields: dict[str, Any]) -> bool:
        """Merge ``fields`` into a done job's result (what a registration learnt later);
        False when the job is no longer done (retried or reset meanwhile)."""
        key = job_key(job_id)

        def merge(pipe: Any) -> bool:
            state, raw = pipe.hmget(key, "state", "result")
            if state != JobState.DONE.value or not raw:
                return False
            pipe.multi()
            pipe.hset(key, "result", json.dumps({**json.loads(raw), **fields}))
            return True

        return bool(
            self.call(
                "store a result", self.client.transaction, merge, key, value_from_callable=True
            )
        )

    def history(self, job_id: str) -> list[AttemptRecord]:
        """Every attempt at a job, oldest first."""
        raw = self.call("read attempts", self.client.hgetall, attempts_key(job_id))
        records = [AttemptRecord.model_validate_json(v) for v in raw.values()]
        return sorted(records, key=lambda r: (r.started_at, r.number))

    def get(self, job_id: str, *, with_history: bool = False) -> JobRecord | None:
        """One job, or None when the registry does not know it."""
        raw = self.call("read a job", self.client.hgetall, job_key(job_id))
        if not raw:
            return None
        history = self.history(job_id) if with_history else []
        return _parse(raw, history)

    def active_ids(self) -> list[str]:
        """Ids of jobs that are not final."""
        return sorted(self.call("list active jobs", self.client.smembers, ACTIVE))

    def waiting_count(self, queues: list[str]) -> int:
        """How many messages wait in these queues, over every priority level."""
        pipe = self.client.pipeline(transaction=False)
        for key in queue_lists(queues):
            pipe.llen(key)
        return sum(int(n) for n in self.call("read queue lengths", pipe.execute))

    def jobs_with_messages(self, queues: list[str]) -> set[str]:
        """Ids of jobs with a message waiting in these queues (not yet delivered)."""
        return set(self.call("read the queues", _jobs_with_messages, self.client, queues))

    def delivered_since(self, moment: float) -> set[str]:
        """Ids of jobs whose message a worker took at or after ``moment`` (epoch seconds)
        and has not acknowledged: a worker about to take the lease, not a lost job."""
        tags = self.call(
            "read recent deliveries", self.client.zrangebyscore, UNACKED_INDEX, moment, "+inf"
        )
        if not tags:
            return set()
        raws = self.call("read recent deliveries", self.client.hmget, UNACKED, tags)
        return {job_id for raw in raws if raw and (job_id := job_id_of(raw))}

    def peek_next(self, queues: list[str]) -> str | None:
        """The raw message a worker on these queues would take next (most urgent, oldest)."""
        # Producers LPUSH and workers BRPOP: the next message is at the right end (-1) of
        # the first non-empty list, priority levels first (keys.queue_lists).
        keys = queue_lists(queues)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.lindex(key, -1)
        found: list[str | None] = self.call("peek the queues", pipe.execute)
        return next((m for m in found if m), None)

    def list(self, limit: int = 200) -> list[JobRecord]:
        """The most recently submitted jobs, newest first."""
        ids = self.call("list jobs", self.client.zrevrange, INDEX, 0, limit - 1)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(job_key(job_id))
        rows = self.call("list jobs", pipe.execute)
        return [_parse(raw, []) for raw in rows if raw]


def _parse(raw: dict[str, str], history: list[AttemptRecord]) -> JobRecord:
    def text(key: str) -> str | None:
        value = raw.get(key) or ""
        return value or None

    progress = text("progress")
    result = text("result")
    return JobRecord(
        job=Job.model_validate_json(raw["job"]),
        state=JobState(raw["state"]),
        queue=raw.get("queue", ""),
        attempts=int(raw.get("attempts") or 0),
        worker=text("worker"),
        attempt_id=text("attempt_id"),
        backend=text("backend"),
        progress=Progress.model_validate_json(progress) if progress else None,
        error=text("error"),
        kind=text("kind"),
        result=json.loads(result) if result else None,
        cancel_requested=raw.get("cancel") == "1",
        created_at=datetime.fromisoformat(raw["created_at"]) if raw.get("created_at") else None,
        queued_at=datetime.fromisoformat(raw["queued_at"]) if raw.get("queued_at") else None,
        updated_at=datetime.fromisoformat(raw["updated_at"]) if raw.get("updated_at") else None,
        history=history,
    )


def task_job_id(message: object) -> str | None:
    """The job id in one decoded kombu message (its task id starts with the job id)."""
    if isinstance(message, str | bytes):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    headers = message.get("headers") if isinstance(message, dict) else None
    task_id = str((headers if isinstance(headers, dict) else {}).get("id") or "")
    return task_id.split("-", 1)[0] or None


def job_id_of(raw: str | bytes) -> str | None:
    """The job id in a raw kombu message, or in an unacked entry wrapping one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, list):  # kombu's unacked entries: [message, exchange, routing_key]
        data = data[0] if data else {}
    return task_job_id(data)


def _jobs_with_messages(client: redis.Redis, queues: list[str]) -> set[str]:
    """Ids of jobs that have a message waiting in one of the queues."""
    found: set[str] = set()
    for key in queue_lists(queues):
        for message in client.lrange(key, 0, -1):
            if job_id := job_id_of(message):
                found.add(job_id)
    # Delivered-but-unacked messages are not counted: with prefetch 1 a live worker
    # takes the lease within moments of delivery, so an unacked message whose job has
    # no lease after the grace period belongs to a dead worker (kombu would only
    # restore it after the visibility timeout, hours later).
    return found


class Endings:
    """Wakes a waiter when a job may have ended; a hint only (a lost one costs a poll).

    Subscribed when made, so an ending published after a waiter's last look is kept for
    its next :meth:`wait`. A broker without pub/sub (or a dropped connection) only makes
    every wait last its whole timeout.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._pubsub: Any = None
        try:
            # typed in redis-py 8, untyped before: through Any for both
            untyped: Any = client
            pubsub = untyped.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(ENDED)
            self._pubsub = pubsub
        except redis.RedisError:
            pass

    def wait(self, timeout: float) -> bool:
        """Return True when an ending was published, False after ``timeout`` seconds."""
        if self._pubsub is None:
            time.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self._pubsub.get_message(timeout=left) is not None:
                    while self._pubsub.get_message(timeout=0) is not None:
                        pass  # several endings at once: one look serves them all
                    return True
        except redis.RedisError:
            self.close()
            time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        """Drop the subscription."""
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
            self._pubsub = None

    def __enter__(self) -> Endings:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
