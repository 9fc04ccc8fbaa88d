"""What kamado's metrics report, read from Redis and the spool through the worker contract.

One :class:`Snapshot` per scrape: jobs by state, queue depths, live and measured encode
speeds, failed attempts by reason, workers, host agents and the spool. Reading goes
through the job registry's client (worker/registry.py owns Redis), never a second one.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from worker.heartbeat import KEY_PREFIX, HostHeartbeat, WorkerHeartbeat
from worker.jobs import JobState
from worker.presence import SPEED_PREFIX
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.progress import Progress
from worker.registry import (
    INDEX,
    RUNNING_STATES,
    UNACKED,
    AttemptRecord,
    Registry,
    attempts_key,
    job_key,
    queue_keys,
)
from worker.settings import Settings

# Attempt outcomes that are not failures: still running, finished, a duplicate delivery
# dropped before it ran, or a cancel the user asked for.
NOT_FAILED = frozenset({"running", "done", "dropped", "cancelled"})
# A finished job's attempts are cached once it has been final this long (the attempt
# record is rewritten just after the job's state, so a fresh final job is read again).
SETTLED = timedelta(seconds=60)
BATCH = 500
FINAL_VALUES = frozenset(s.value for s in JobState if s.final)
RUNNING_VALUES = frozenset(s.value for s in RUNNING_STATES)


@dataclass(frozen=True)
class Speed:
    """A worker's measured speed on one backend (moving average over its jobs)."""

    worker: str
    backend: str
    fps: float | None
    realtime: float | None
    jobs: int


@dataclass(frozen=True)
class Running:
    """One encode running now: who runs it, on what, how fast."""

    worker: str
    backend: str
    fps: float | None
    speed: float | None


@dataclass
class Snapshot:
    """Everything one scrape reports."""

    jobs: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    unacked: int = 0
    workers: list[WorkerHeartbeat] = field(default_factory=list)
    hosts: list[HostHeartbeat] = field(default_factory=list)
    speeds: list[Speed] = field(default_factory=list)
    running: list[Running] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    spool: int = 0
    spool_oldest_age: float = 0.0
    spool_unreadable: int = 0


def spool_dir(settings: Settings) -> Path:
    """Where the scheduler spools submissions while the broker is away."""
    configured = getattr(settings.scheduler, "spool_dir", None)
    return Path(configured) if configured else settings.state_dir / "spool"


def read_spool(directory: Path, now: float | None = None) -> tuple[int, float]:
    """Count the spooled submissions (``*.json``) and the age of the oldest, in seconds."""
    count, oldest = 0, None
    try:
        entries = list(directory.glob("*.json"))
    except OSError:
        return 0, 0.0
    for entry in entries:
        try:
            mtime = entry.stat().st_mtime
        except OSError:  # sent and removed while we looked
            continue
        count += 1
        oldest = mtime if oldest is None else min(oldest, mtime)
    age = max((now or time.time()) - oldest, 0.0) if oldest is not None else 0.0
    return count, age


def count_unreadable(directory: Path) -> int:
    """Spooled entries this process may not read (left in place until their mode is fixed)."""
    try:
        entries = list(directory.glob("*.json"))
    except OSError:
        return 0
    return sum(1 for entry in entries if entry.exists() and not os.access(entry, os.R_OK))


def watched_queues(settings: Settings) -> list[str]:
    """The capability queues plus any this box's workers are configured to consume."""
    return list(dict.fromkeys([QUEUE_GPU, QUEUE_CPU, *settings.worker.queues]))


def _settled(state: str, updated: str | None, cutoff: datetime) -> bool:
    """True for a job final long enough that its attempt history no longer changes."""
    if state not in FINAL_VALUES or not updated:
        return False
    try:
        return datetime.fromisoformat(updated) < cutoff
    except ValueError:
        return False


def _failures(history: list[AttemptRecord]) -> Counter[str]:
    return Counter(r.kind or "unknown" for r in history if r.outcome not in NOT_FAILED)


class Reader:
    """Reads a Snapshot from Redis; keeps the failure counts of settled jobs between scrapes."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self._settled: dict[str, Counter[str]] = {}

    def snapshot(self) -> Snapshot:
        """Read everything once (raises BrokerError when Redis cannot be read)."""
        snap = Snapshot()
        self._jobs(snap)
        self._queues(snap)
        self._heartbeats(snap)
        self._speeds(snap)
        snap.spool, snap.spool_oldest_age = read_spool(spool_dir(self.settings))
        snap.spool_unreadable = count_unreadable(spool_dir(self.settings))
        return snap

    def _jobs(self, snap: Snapshot) -> None:
        reg = self.registry
        limit = self.settings.metrics.job_scan_limit
        ids: list[str] = reg.call("list jobs", reg.client.zrevrange, INDEX, 0, limit - 1)
        states: Counter[str] = Counter({s.value: 0 for s in JobState})
        failures: Counter[str] = Counter()
        cache: dict[str, Counter[str]] = {}
        to_read: dict[str, bool] = {}  # job id -> settled (cache its counts once read)
        cutoff = datetime.now(UTC) - SETTLED
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            pipe = reg.client.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hmget(job_key(job_id), "state", "updated_at", "worker", "progress")
            rows = reg.call("read jobs", pipe.execute)
            for job_id, (state, updated, worker, progress) in zip(chunk, rows, strict=True):
                if not state:
                    continue
                states[state] += 1
                if state in RUNNING_VALUES:
                    self._running(snap, worker, progress)
                settled = _settled(state, updated, cutoff)
                if settled and job_id in self._settled:
                    cache[job_id] = self._settled[job_id]
                    failures.update(cache[job_id])
                else:
                    to_read[job_id] = settled
        for job_id, counts in self._histories(list(to_read)).items():
            failures.update(counts)
            if to_read[job_id]:
                cache[job_id] = counts
        self._settled = cache
        snap.jobs = dict(states)
        snap.failures = dict(failures)

    def _histories(self, ids: list[str]) -> dict[str, Counter[str]]:
        reg = self.registry
        found: dict[str, Counter[str]] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            pipe = reg.client.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hvals(attempts_key(job_id))
            rows = reg.call("read attempts", pipe.execute)
            for job_id, values in zip(chunk, rows, strict=True):
                history = []
                for value in values:
                    try:
                        history.append(AttemptRecord.model_validate_json(value))
                    except ValidationError:
                        continue
                found[job_id] = _failures(history)
        return found

    @staticmethod
    def _running(snap: Snapshot, worker: str | None, progress: str | None) -> None:
        if not worker or not progress:
            return
        try:
            report = Progress.model_validate_json(progress)
        except ValidationError:
            return
        snap.running.append(Running(worker, report.backend or "unknown", report.fps, report.speed))

    def _queues(self, snap: Snapshot) -> None:
        reg = self.registry
        for queue in watched_queues(self.settings):
            keys = reg.call("list queue keys", queue_keys, reg.client, [queue])
            pipe = reg.client.pipeline(transaction=False)
            for key in keys:
                pipe.llen(key)
            snap.queues[queue] = sum(int(n) for n in reg.call("read queue lengths", pipe.execute))
        snap.unacked = int(reg.call("count unacked messages", reg.client.hlen, UNACKED))

    def _heartbeats(self, snap: Snapshot) -> None:
        reg = self.registry
        for kind, model in (("worker", WorkerHeartbeat), ("host", HostHeartbeat)):
            keys = sorted(reg.call("list heartbeats", reg.client.keys, f"{KEY_PREFIX}:{kind}:*"))
            values = reg.call("read heartbeats", reg.client.mget, keys) if keys else []
            for value in values:
                if not value:
                    continue
                try:
                    beat = model.model_validate_json(value)
                except ValidationError:
                    continue
                if isinstance(beat, WorkerHeartbeat):
                    snap.workers.append(beat)
                elif isinstance(beat, HostHeartbeat):
                    snap.hosts.append(beat)

    def _speeds(self, snap: Snapshot) -> None:
        reg = self.registry
        keys = sorted(reg.call("list speeds", reg.client.keys, f"{SPEED_PREFIX}*"))
        for key in keys:
            worker = key.removeprefix(SPEED_PREFIX)
            raw = reg.call("read speeds", reg.client.hgetall, key)
            for backend, text in sorted(raw.items()):
                try:
                    data = json.loads(text)
                except ValueError:
                    continue
                snap.speeds.append(
                    Speed(
                        worker=worker,
                        backend=backend,
                        fps=data.get("fps"),
                        realtime=data.get("realtime"),
                        jobs=int(data.get("jobs") or 0),
                    )
                )
