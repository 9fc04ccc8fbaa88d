"""A live job's phase in Redis: who follows the recording, and what the finish hook said.

A recorder's start hook submits a job with ``live = true`` (:mod:`scheduler.live`). Its
phase lives in ``kamado:job:<id>:live`` beside the job's hash and moves only through the
atomic transitions below, so the finish hook and the live attempt never both act:

==============  ======================================================================
``recording``   a worker was chosen; its attempt follows the file as it grows
``waiting``     no worker is fast enough: the job is held until the finish hook
``finished``    the finish hook came; the live attempt reads to the end and verifies
``rejected``    the finish hook reported a failed or damaged recording: the live
                attempt stops, then the job goes ``after`` (queue, hold or cancel)
``abandoned``   the live attempt gave up before the finish hook; the job is held
``ordinary``    the job runs as any job: a worker reads the finished file
==============  ======================================================================

Whoever leaves the live path last publishes the ordinary job: the finish hook when no
live attempt holds the lease (``release``), else the live attempt when it stops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from worker.broker.keys import lease_key, live_key
from worker.broker.registry import Registry

__all__ = [
    "After",
    "LiveState",
    "Phase",
    "abandon",
    "finish_recording",
    "open_live",
    "phase_of",
    "read_live",
    "report_lag",
]

# A live hash outlives its job's run by a week (status shows how a live job went).
KEEP_S = 7 * 24 * 3600

After = Literal["queue", "hold", "cancel"]


class Phase(StrEnum):
    """Where a live job is (see the module's table)."""

    RECORDING = "recording"
    WAITING = "waiting"
    FINISHED = "finished"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    ORDINARY = "ordinary"


@dataclass(frozen=True)
class LiveState:
    """What `kamado status` shows of a live job."""

    phase: Phase
    worker: str = ""
    reason: str = ""
    after: str = "queue"
    deadline: float | None = None
    lag_s: float | None = None
    read_bytes: int = 0
    file_bytes: int = 0
    updated_at: float | None = None


# KEYS: live hash, lease. ARGV: reject reason ('' for a good recording), after, now.
# Returns following (the live attempt goes on), stopping (it stops, then does `after`),
# release (nobody runs it live: the caller publishes or holds the job) or none.
_FINISH = """
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return 'none' end
if phase == 'recording' and redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[1] == '' then
    redis.call('HSET', KEYS[1], 'phase', 'finished', 'finished_at', ARGV[3], 'updated_at', ARGV[3])
    return 'following'
  end
  redis.call('HSET', KEYS[1], 'phase', 'rejected', 'reason', ARGV[1], 'after', ARGV[2],
    'finished_at', ARGV[3], 'updated_at', ARGV[3])
  return 'stopping'
end
if phase == 'recording' or phase == 'waiting' or phase == 'abandoned' then
  local reason = ARGV[1]
  if reason == '' then reason = redis.call('HGET', KEYS[1], 'reason') or '' end
  if phase == 'recording' and ARGV[1] == '' then reason = 'the live attempt is gone' end
  redis.call('HSET', KEYS[1], 'phase', 'ordinary', 'reason', reason, 'finished_at', ARGV[3],
    'updated_at', ARGV[3])
  return 'release'
end
return 'none'
"""

# KEYS: live hash. ARGV: reason, now. Returns what the stopping attempt does with the job:
# hold (wait for the finish hook), queue (publish it as an ordinary job), or the
# rejected recording's `after`.
_ABANDON = """
local phase = redis.call('HGET', KEYS[1], 'phase')
if phase == 'recording' then
  redis.call('HSET', KEYS[1], 'phase', 'abandoned', 'reason', ARGV[1], 'updated_at', ARGV[2])
  return 'wait'
end
if phase == 'finished' then
  redis.call('HSET', KEYS[1], 'phase', 'ordinary', 'reason', ARGV[1], 'updated_at', ARGV[2])
  return 'queue'
end
if phase == 'rejected' then
  redis.call('HSET', KEYS[1], 'phase', 'ordinary', 'updated_at', ARGV[2])
  return redis.call('HGET', KEYS[1], 'after') or 'queue'
end
return 'queue'
"""


def open_live(
    registry: Registry,
    job_id: str,
    phase: Phase,
    *,
    worker: str = "",
    deadline: float | None = None,
    reason: str = "",
) -> None:
    """Start a live job's record (a new start hook for the job starts it afresh)."""
    key = live_key(job_id)
    fields: dict[Any, Any] = {
        "phase": phase.value,
        "worker": worker,
        "reason": reason,
        "after": "queue",
        "deadline": "" if deadline is None else repr(deadline),
        "lag_s": "",
        "read_bytes": 0,
        "file_bytes": 0,
        "updated_at": repr(time.time()),
    }
    pipe = registry.client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping=fields)
    pipe.expire(key, KEEP_S)
    registry.call("open a live job", pipe.execute)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def read_live(registry: Registry, job_id: str) -> LiveState | None:
    """The live job's state, or None for a job that was never live."""
    raw = registry.call("read a live job", registry.client.hgetall, live_key(job_id))
    if not raw or raw.get("phase") not in Phase._value2member_map_:
        return None
    return LiveState(
        phase=Phase(raw["phase"]),
        worker=raw.get("worker", ""),
        reason=raw.get("reason", ""),
        after=raw.get("after", "queue"),
        deadline=_number(raw.get("deadline")),
        lag_s=_number(raw.get("lag_s")),
        read_bytes=int(_number(raw.get("read_bytes")) or 0),
        file_bytes=int(_number(raw.get("file_bytes")) or 0),
        updated_at=_number(raw.get("updated_at")),
    )


def phase_of(registry: Registry, job_id: str) -> Phase | None:
    """Only the phase (one round trip), or None for a job that was never live."""
    raw = registry.call("read a live phase", registry.client.hget, live_key(job_id), "phase")
    return Phase(raw) if raw in Phase._value2member_map_ else None


def finish_recording(
    registry: Registry, job_id: str, *, reject: str = "", after: After = "queue"
) -> str:
    """The finish hook's transition: following, stopping, release or none (see _FINISH)."""
    script = registry.client.register_script(_FINISH)
    keys = [live_key(job_id), lease_key(job_id)]
    return str(
        registry.call("finish a live job", script, keys=keys, args=[reject, after, time.time()])
    )


def abandon(registry: Registry, job_id: str, reason: str) -> str:
    """The live attempt stops: wait (hold the job for the finish hook), queue, hold or cancel."""
    script = registry.client.register_script(_ABANDON)
    return str(
        registry.call(
            "abandon a live job", script, keys=[live_key(job_id)], args=[reason, time.time()]
        )
    )


def report_lag(
    registry: Registry, job_id: str, *, lag_s: float | None, read_bytes: int, file_bytes: int
) -> None:
    """The live attempt's position behind the recording (status and watch show it)."""
    fields: dict[Any, Any] = {
        "lag_s": "" if lag_s is None else f"{lag_s:.1f}",
        "read_bytes": read_bytes,
        "file_bytes": file_bytes,
        "updated_at": repr(time.time()),
    }
    registry.call("report a live lag", registry.client.hset, live_key(job_id), mapping=fields)
