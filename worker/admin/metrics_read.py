"""What kamado's metrics report, read from Redis and the spool through the worker contract.

One :class:`Snapshot` per scrape: jobs by state, queue depths, live and measured encode
speeds, the counters (failed attempts, watchdog actions), workers, host agents and the
spool. Reading goes through the job registry's client (worker/broker/registry.py owns Redis).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from worker.broker.counters import Counters, read_counters
from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import (
    HEARTBEAT_PREFIX,
    INDEX,
    SPEED_PREFIX,
    UNACKED,
    job_key,
)
from worker.broker.registry import RUNNING_STATES, Registry
from worker.jobs import JobState
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.progress import Progress
from worker.settings.model import Settings, spool_dir

BATCH = 500
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
    counters: Counters = field(default_factory=Counters)
    spool: int = 0
    spool_oldest_age: float = 0.0
    spool_unreadable: int = 0


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


class Reader:
    """Reads a Snapshot from Redis."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry

    def snapshot(self) -> Snapshot:
        """Read everything once (raises BrokerError when Redis cannot be read)."""
        snap = Snapshot()
        self._jobs(snap)
        self._queues(snap)
        self._heartbeats(snap)
        self._speeds(snap)
        snap.counters = read_counters(self.registry)
        snap.spool, snap.spool_oldest_age = read_spool(spool_dir(self.settings))
        snap.spool_unreadable = count_unreadable(spool_dir(self.settings))
        return snap

    def _jobs(self, snap: Snapshot) -> None:
        reg = self.registry
        limit = self.settings.metrics.job_scan_limit
        ids: list[str] = reg.call("list jobs", reg.client.zrevrange, INDEX, 0, limit - 1)
        states: Counter[str] = Counter({s.value: 0 for s in JobState})
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            pipe = reg.client.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hmget(job_key(job_id), "state", "worker", "progress")
            rows = reg.call("read jobs", pipe.execute)
            for state, worker, progress in rows:
                if not state:
                    continue
                states[state] += 1
                if state in RUNNING_VALUES:
                    self._running(snap, worker, progress)
        snap.jobs = dict(states)

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
            snap.queues[queue] = reg.waiting_count([queue])
        snap.unacked = int(reg.call("count unacked messages", reg.client.hlen, UNACKED))

    def _heartbeats(self, snap: Snapshot) -> None:
        reg = self.registry
        for kind, model in (("worker", WorkerHeartbeat), ("host", HostHeartbeat)):
            keys = sorted(
                reg.call("list heartbeats", reg.client.keys, f"{HEARTBEAT_PREFIX}:{kind}:*")
            )
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
                if ":" in backend:  # per profile (live routing), not a backend's series
                    continue
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
