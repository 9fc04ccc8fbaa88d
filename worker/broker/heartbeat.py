"""Heartbeats: what each role publishes about itself in Redis (keys in worker/broker/keys.py).

Roles talk only through the broker; these models are the shared contract. A heartbeat is
a JSON value under its key with a TTL of a few intervals, so a dead process disappears.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from worker.captions import CaptionSupport

__all__ = ["BackendProblem", "HostHeartbeat", "WorkerHeartbeat", "now"]

SCHEMA_VERSION = 1


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class BackendSpeed(BaseModel):
    """A backend a worker proved, with its measured speed."""

    model_config = ConfigDict(frozen=True)

    backend: str
    fps: float | None = None
    realtime: float | None = Field(default=None, description="encode speed ÷ realtime")


class BackendProblem(BaseModel):
    """A backend a worker cannot use right now, with ffmpeg's exact reason."""

    model_config = ConfigDict(frozen=True)

    backend: str
    status: str = Field(description="failed, absent, or suspended after repeated failures")
    kind: str = ""
    reason: str = ""


class WorkerHeartbeat(BaseModel):
    """A worker's heartbeat: who it is, what it can do, what it is doing."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    hostname: str
    queues: list[str]
    backends: list[BackendSpeed] = Field(default_factory=list)
    current_job: str | None = None
    problems: list[BackendProblem] = Field(default_factory=list)
    # Whether the worker's ffmpeg decodes ARIB captions (None: a worker that does not say).
    captions: CaptionSupport | None = None
    updated_at: datetime = Field(default_factory=now)


class HostHeartbeat(BaseModel):
    """A host agent's heartbeat: the VM's state and the last thing the agent did."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    name: str
    vm_state: str
    last_action: str = ""
    last_action_at: datetime | None = None
    preflight_ok: bool | None = None
    # Set while the agent will not start the VM for work (its worker never consumed).
    held_until: datetime | None = None
    # The Celery node name of the VM's worker (celery@HOST), whose heartbeat tells what
    # the guest proved; "" from an agent that does not say.
    guest_worker: str = ""
    updated_at: datetime = Field(default_factory=now)
