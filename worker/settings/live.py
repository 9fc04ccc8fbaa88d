"""The `[live]` config section: encoding a recording while it is being recorded."""

from __future__ import annotations

from pydantic import Field

from worker.settings.base import Section

__all__ = ["LiveSettings"]


class LiveSettings(Section):
    """A recorder's start hook (`kamado hook epgstation --start`) submits a live job: a
    worker fast enough follows the recording as it grows and finishes seconds after it
    ends. Anything going wrong falls back to an ordinary job after the finish hook."""

    enabled: bool = Field(
        default=True, description="false: a start hook only notes the recording; nothing runs live"
    )
    margin: float = Field(
        default=1.3,
        ge=1.0,
        le=100,
        description="a live job goes only to a worker whose measured speed for the profile "
        "is at least this many times real time",
    )
    finish_margin: float = Field(
        default=600.0,
        ge=0,
        description="seconds after the programme's end (the recorder's END_AT) a live attempt "
        "waits for the finish hook before giving up",
    )
    start_wait: float = Field(
        default=120.0,
        gt=0,
        description="seconds a live attempt waits for the recording to appear and become readable",
    )
    poll: float = Field(
        default=0.5, gt=0, le=10, description="seconds between looks at the growing recording"
    )
    head_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="bytes of the recording read before its streams are probed",
    )
    head_wait: float = Field(
        default=5.0,
        gt=0,
        description="seconds of growth after which the streams are probed even with fewer bytes",
    )
