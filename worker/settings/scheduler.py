"""The `[scheduler]` config section: submission, recorder hooks, spool, routing."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from worker.settings.base import Section

__all__ = [
    "EpgstationSettings",
    "HoldSettings",
    "PathMap",
    "ProfileRule",
    "RoutingSettings",
    "SchedulerSettings",
]

SFTP_TARGET = re.compile(r"^sftp://[^/\s]+/")


class PathMap(Section):
    """One prefix mapping: a recorder path to where workers reach the same directory."""

    recorder: str = Field(description="the directory as the recorder names it (absolute)")
    target: str = Field(
        description="the same directory for workers: an absolute path (a shared mount) or "
        "sftp://<location>/<path>"
    )

    @field_validator("recorder")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"recorder must be an absolute path, got {value!r}")
        return str(PurePosixPath(value))

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if value.startswith("sftp://"):
            if not SFTP_TARGET.match(value + "/"):
                raise ValueError(f"target {value!r}: expected sftp://<location>/<path>")
            if ".." in value.split("/"):
                raise ValueError(f"target {value!r}: '..' is not allowed")
            return value.rstrip("/")
        if not value.startswith("/"):
            raise ValueError(
                f"target must be an absolute path or sftp://<location>/<path>, got {value!r}"
            )
        return str(PurePosixPath(value))


class ProfileRule(Section):
    """Pick a profile for recordings that match every condition given (first rule wins)."""

    profile: str = Field(min_length=1)
    channel: str | None = Field(default=None, description="regular expression on the channel")
    title: str | None = Field(default=None, description="regular expression on the title")
    genre: str | None = Field(default=None, description="regular expression on the genre")
    path: str | None = Field(default=None, description="glob on the recorder's path")
    recorder: Literal["epgstation", "chinachu", "edcb", "enqueue"] | None = None

    @field_validator("channel", "title", "genre")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"{value!r} is not a regular expression: {e}") from e
        return value

    @model_validator(mode="after")
    def _has_condition(self) -> ProfileRule:
        if not any((self.channel, self.title, self.genre, self.path, self.recorder)):
            raise ValueError(
                f"rule for profile {self.profile!r} has no condition; "
                "set channel, title, genre, path or recorder (or use encode.default_profile)"
            )
        return self


class HoldSettings(Section):
    """Recordings damaged beyond these counts are held (not encoded) or flagged."""

    drops: int | None = Field(default=None, ge=0, description="hold above this many drops")
    errors: int | None = Field(default=None, ge=0, description="hold above this many errors")
    scrambling: int | None = Field(
        default=None, ge=0, description="hold above this many scrambled packets"
    )
    action: Literal["hold", "flag"] = Field(
        default="hold", description="hold: wait for `kamado retry`; flag: encode, but mark it"
    )
    failed_recordings: Literal["submit", "flag", "hold", "skip"] = Field(
        default="flag",
        description="what a recording the recorder reported as failed becomes",
    )


class RoutingSettings(Section):
    """The routing policy of `kamado scheduler run`."""

    enabled: bool = Field(
        default=True, description="move waiting software-capable jobs to encode.cpu when faster"
    )
    interval: float = Field(default=2.0, gt=0, le=300, description="seconds between passes")
    vm_boot_time: float = Field(
        default=90.0, ge=0, description="seconds from a VM start to its worker taking jobs"
    )
    hardware_realtime: float = Field(
        default=8.0, gt=0, description="assumed hardware speed (× realtime) until one is measured"
    )
    software_realtime: float = Field(
        default=0.1, gt=0, description="assumed software speed (× realtime) until one is measured"
    )
    software_lookahead: int = Field(
        default=1, ge=1, le=100, description="jobs waiting in encode.cpu per software worker"
    )
    assumed_bitrate_mbps: float = Field(
        default=17.0, gt=0, description="to estimate a recording's length from its size"
    )


class EpgstationSettings(Section):
    """EPGStation as a client: its encode preset (`kamado epgstation encode`) and the
    registration of the finish hook's outputs in its library."""

    url: str | None = Field(
        default=None,
        description="EPGStation's address, e.g. http://127.0.0.1:8888; set: outputs of jobs "
        "from `kamado hook epgstation` are registered as encoded video files of the recording",
    )
    parent_dir: str = Field(
        default="recorded",
        min_length=1,
        description="the `recorded` entry (its name) of EPGStation's config.yml that keeps "
        "the registered files",
    )
    sub_dir: str | None = Field(
        default=None, description="a folder under parent_dir for the registered files"
    )
    view_name: str = Field(
        default="kamado", min_length=1, description="the name EPGStation shows for the file"
    )
    register_retry: float = Field(
        default=30.0, gt=0, le=3600, description="seconds between tries while EPGStation is away"
    )
    register_give_up: float = Field(
        default=86400.0, gt=0, description="seconds after which an output is no longer registered"
    )
    request_timeout: float = Field(
        default=600.0, gt=0, description="seconds one request to EPGStation may take (an upload)"
    )
    broker_wait: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="seconds the encode preset waits for a broker that is away (its job "
        "spooled meanwhile) before it fails",
    )
    cancel_wait: float = Field(
        default=30.0, gt=0, le=600, description="seconds the preset waits for its cancelled job"
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"url {value!r}: expected http://host:port (EPGStation's address)")
        return value.rstrip("/")

    @field_validator("sub_dir")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in PurePosixPath(value).parts):
            raise ValueError(f"sub_dir {value!r}: must be a relative folder without '..'")
        return value or None


class SchedulerSettings(Section):
    """Submission, recorder hooks, the spool and the routing policy."""

    spool_dir: Path | None = Field(
        default=None, description="submissions waiting for the broker; empty: <state_dir>/spool"
    )
    spool_poll: float = Field(
        default=0.25, gt=0, le=60, description="seconds between spool scans of the service"
    )
    delivery_retry: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="seconds a hook's delivery retries a broker that is away before it leaves "
        "the spool to the next hook, `kamado spool flush` or the service",
    )
    hook_connect_timeout: float = Field(
        default=1.0, gt=0, le=30, description="seconds a hook waits for the broker before spooling"
    )
    hook_priority: int = Field(default=2, ge=0, le=9, description="new recordings (0 is first)")
    backlog_priority: int = Field(default=7, ge=0, le=9, description="`kamado enqueue`")
    path_map: list[PathMap] = Field(default_factory=list)
    rules: list[ProfileRule] = Field(default_factory=list)
    hold: HoldSettings = HoldSettings()
    routing: RoutingSettings = RoutingSettings()
    epgstation: EpgstationSettings = EpgstationSettings()
    recording_suffixes: list[str] = Field(
        default_factory=lambda: [".ts", ".m2ts", ".mts", ".m2t"],
        description="file name endings `kamado enqueue` takes as recordings",
    )
    min_age: float = Field(
        default=60.0, ge=0, description="seconds since the last write before enqueue takes a file"
    )
    settle_time: float = Field(
        default=1.0, ge=0, le=60, description="seconds between enqueue's two size checks"
    )

    @field_validator("spool_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("recording_suffixes")
    @classmethod
    def _suffixes(cls, value: list[str]) -> list[str]:
        if not value or any(not s.startswith(".") for s in value):
            raise ValueError('list suffixes with their dot, e.g. [".ts", ".m2ts"]')
        return [s.lower() for s in value]
