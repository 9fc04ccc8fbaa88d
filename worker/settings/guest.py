"""The `[guest]` config section: the guest agent inside the passthrough VM."""

from __future__ import annotations

from pydantic import Field, field_validator

from worker.settings.base import Section

# The names of worker/backends/proof.py's shapes (settings cannot import the backends).
PROBE_SHAPES = ("1440x1080i", "720x480i", "1920x1080i", "320x240i")


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
    probe_shapes: list[str] = Field(
        default_factory=lambda: ["1440x1080i", "720x480i", "1920x1080i"],
        min_length=1,
        description="the sample shapes each backend must encode to be proven: the "
        "broadcasts 1440x1080i, 720x480i and 1920x1080i, or 320x240i for a guest too slow "
        "for HD (an emulated CPU, as kamado demo --topology runs)",
    )

    @field_validator("probe_shapes")
    @classmethod
    def _shapes(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in PROBE_SHAPES]
        if unknown:
            raise ValueError(
                f"unknown probe shape {unknown[0]!r}; known: {', '.join(PROBE_SHAPES)}"
            )
        if len(set(value)) != len(value):
            raise ValueError("a shape is named twice")
        return value

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
