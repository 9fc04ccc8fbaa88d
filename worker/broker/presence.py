"""Who is alive and how fast: worker heartbeats and measured speeds in Redis.

A worker's main process publishes a WorkerHeartbeat every few seconds with a TTL, so a
dead worker disappears; after each job the task records the backend's measured speed,
which the scheduler's routing and `kamado workers` read.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from worker.broker.heartbeat import BackendSpeed, WorkerHeartbeat
from worker.broker.keys import job_key, speed_key, worker_key
from worker.broker.registry import Registry
from worker.errors import BrokerError

__all__ = ["profile_realtime", "workers"]

log = logging.getLogger("kamado.presence")

# Weight of the newest job in the moving average of a backend's speed.
SPEED_WEIGHT = 0.3


def speed_field(backend: str, profile: str | None = None) -> str:
    """The field of a worker's speed hash: a backend, or a backend with one profile."""
    return backend if profile is None else f"{backend}:{profile}"


def record_speed(
    registry: Registry,
    hostname: str,
    backend: str,
    fps: float | None,
    realtime: float | None,
    *,
    profile: str | None = None,
) -> None:
    """Fold one finished job's speed into the worker's moving average for that backend
    (with ``profile``, for that backend and profile: what a live job needs)."""
    backend = speed_field(backend, profile)
    raw = registry.call("read speeds", registry.client.hget, speed_key(hostname), backend)
    old = json.loads(raw) if raw else {}
    jobs = int(old.get("jobs", 0))

    def blend(key: str, new: float | None) -> float | None:
        if new is None:
            kept: float | None = old.get(key)
            return kept
        if old.get(key) is None:
            return round(new, 3)
        previous = float(old[key])
        return round(previous * (1 - SPEED_WEIGHT) + new * SPEED_WEIGHT, 3)

    value = {"fps": blend("fps", fps), "realtime": blend("realtime", realtime), "jobs": jobs + 1}
    registry.call(
        "store speeds", registry.client.hset, speed_key(hostname), backend, json.dumps(value)
    )


def profile_realtime(registry: Registry, hostname: str, backend: str, profile: str) -> float | None:
    """A worker's measured speed (× real time) for one backend and profile, or None when it
    has not finished a job of that profile with that backend yet."""
    raw = registry.call(
        "read speeds", registry.client.hget, speed_key(hostname), speed_field(backend, profile)
    )
    value = json.loads(raw).get("realtime") if raw else None
    return float(value) if value is not None else None


def speeds(registry: Registry, hostname: str) -> dict[str, BackendSpeed]:
    """A worker's measured speed per backend."""
    raw = registry.call("read speeds", registry.client.hgetall, speed_key(hostname))
    result = {}
    for backend, text in raw.items():
        if ":" in backend:  # a backend with one profile (profile_realtime)
            continue
        data = json.loads(text)
        result[backend] = BackendSpeed(
            backend=backend, fps=data.get("fps"), realtime=data.get("realtime")
        )
    return result


def publish(registry: Registry, beat: WorkerHeartbeat, ttl: float) -> None:
    """Write one heartbeat with a TTL."""
    registry.call(
        "publish a heartbeat",
        registry.client.set,
        worker_key(beat.hostname),
        beat.model_dump_json(),
        px=int(ttl * 1000),
    )


def workers(registry: Registry) -> list[WorkerHeartbeat]:
    """Every worker whose heartbeat is alive."""
    client = registry.client
    keys = sorted(registry.call("list workers", client.keys, worker_key("*")))
    values = registry.call("read heartbeats", client.mget, keys) if keys else []
    return [WorkerHeartbeat.model_validate_json(v) for v in values if v]


def current_job(registry: Registry, hostname: str) -> str | None:
    """The job this worker holds a lease on right now, if any (one round trip)."""
    ids = registry.active_ids()
    if not ids:
        return None
    pipe = registry.client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(job_key(job_id), "worker", "attempt_id")
    rows = registry.call("find the current job", pipe.execute)
    for job_id, (worker, attempt_id) in zip(ids, rows, strict=True):
        if worker == hostname and attempt_id:
            return job_id
    return None


class HeartbeatPublisher:
    """A thread in the worker's main process publishing its heartbeat until stopped."""

    def __init__(
        self,
        registry: Registry,
        make: Callable[[], WorkerHeartbeat],
        *,
        interval: float = 5.0,
    ) -> None:
        self.registry = registry
        self.make = make
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        """Publish at once, then every interval."""
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and remove the heartbeat so the worker disappears at once."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            beat = self.make()
            self.registry.call(
                "remove a heartbeat", self.registry.client.delete, worker_key(beat.hostname)
            )
        except BrokerError as e:
            log.warning("could not remove the heartbeat: %s", e)

    def _run(self) -> None:
        while True:
            try:
                publish(self.registry, self.make(), ttl=self.interval * 3)
            except BrokerError as e:
                log.warning("heartbeat not published: %s", e)
            if self._stop.wait(self.interval):
                return
