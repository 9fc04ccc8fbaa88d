"""The `[guest]` config section: the guest agent inside the passthrough VM."""

from __future__ import annotations

from pydantic import Field

from worker.settings.base import Section


class GuestSettings(Section):
    """How the guest agent proves the GPU, picks its queues and reacts to a failing GPU."""

    take_software_work: bool = Field(
        default=False,
        description="also consume encode.cpu (libx264) besides the proven hardware queue",
    )
    probe_seconds: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="length of each broadcast-like probe sample (1440x1080i, 720x480i, "
        "1920x1080i); every worker start encodes them all",
    )
    probe_timeout: float = Field(
        default=120.0, gt=0, le=3600, description="seconds one backend's probe encode may take"
    )
    hardware_failure_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description="consecutive hardware/crash/stalled failures on a hardware backend "
        "before the worker stops consuming encode.gpu and re-probes",
    )
    reprobe_interval: float = Field(
        default=300.0,
        gt=0,
        description="seconds between re-probes while the GPU is not served",
    )
    check_interval: float = Field(
        default=2.0, gt=0, le=60, description="seconds between checks of the failure count"
    )
    heartbeat_interval: float = Field(
        default=5.0, gt=0, le=300, description="seconds between heartbeats"
    )
