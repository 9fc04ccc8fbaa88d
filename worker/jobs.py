"""The job contract: what crosses the broker between the scheduler and the workers."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from worker.captions import CaptionResult
from worker.errors import BadInputError
from worker.outputs.identity import real_path
from worker.outputs.names import fit_name, stem_of
from worker.outputs.template import DEFAULT_TEMPLATE, render_stem

__all__ = [
    "ENCODE_TASK",
    "MAX_TEXT",
    "SCHEMA_VERSION",
    "EncodeResult",
    "Job",
    "JobState",
    "Recording",
    "Text",
    "canonical_source",
    "default_output",
    "derive_job_id",
    "is_uri",
    "now",
    "output_stem",
    "source_identity_key",
]

SCHEMA_VERSION = 1
ENCODE_TASK = "kamado.encode"
# The longest text a recorder's field may carry in a task (EPGStation's NAME is ~100).
MAX_TEXT = 4096


class JobState(StrEnum):
    """Where a job is in its life; done, failed and cancelled are final."""

    QUEUED = "queued"
    HELD = "held"
    STAGING = "staging"
    ENCODING = "encoding"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for states a job never leaves (except by an explicit retry)."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


Text = str | None


class Recording(BaseModel):
    """What the recorder told us about the programme (all optional).

    It crosses the broker inside every task, so a crafted task's metadata is checked as
    strictly as a hook's: bounded text without NUL, times with their offset, counts >= 0.
    ``failed`` is the recorder's own verdict (EPGStation's recordingFailedCommand, an
    EDCB result other than 録画終了).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT)

    recorder: Text = None
    recorded_id: Text = None
    title: Text = None
    channel: Text = None
    genre: Text = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    drop_count: int | None = Field(default=None, ge=0)
    error_count: int | None = Field(default=None, ge=0)
    scrambling_count: int | None = Field(default=None, ge=0)
    failed: bool = False

    @field_validator("recorder", "recorded_id", "title", "channel", "genre")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\0" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @property
    def duration_s(self) -> float | None:
        """The programme's length from the recorder, when both times are known."""
        if self.start and self.end and self.end > self.start:
            return (self.end - self.start).total_seconds()
        return None


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def is_uri(source: str) -> bool:
    """True for a remote location such as ``sftp://recorder/rec/a.ts``."""
    return "://" in source and not source.startswith("file://")


def canonical_source(source: str) -> str:
    """The stable spelling of a source: an absolute local path, or the URI unchanged."""
    if is_uri(source):
        return source
    raw = source.removeprefix("file://")
    return str(Path(raw).expanduser().absolute())


def source_identity_key(source: str) -> str:
    """What names the recording itself: its real path when it is a file on this machine
    (symlinks and ``..`` resolved), else its canonical spelling (a URI, or a path only
    the workers can see).

    A file not there yet in a directory that is (a recording that has just started, named
    by the recorder's start hook) is named by that directory's real path too, so the
    finish hook, which finds the file, names the same job.
    """
    canonical = canonical_source(source)
    if is_uri(canonical):
        return canonical
    if not os.path.lexists(canonical) and not os.path.isdir(os.path.dirname(canonical)):  # noqa: PTH112, PTH120 (never raise)
        return canonical
    return real_path(canonical)


def derive_job_id(source: str, profile: str, output: str | None = None) -> str:
    """The job id: the same recording with the same profile is always the same job.

    Derived from the recording's identity, so one file reached through a symlinked
    directory or a ``..`` spelling is one job; a plain path keeps the id it always had.
    With ``output`` (a recorder that names the output itself, such as EPGStation's
    encode preset), each output of the recording is a job of its own.
    """
    key = f"{source_identity_key(source)}\0{profile}"
    if output is not None:
        key += f"\0{output}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def output_stem(name: str, template: str, recording: Recording | None) -> str:
    """The stem an output of the recording file ``name`` gets from ``encode.output_name``."""
    rec = recording or Recording()
    return render_stem(
        template, stem=stem_of(name), title=rec.title, channel=rec.channel, start=rec.start
    )


def default_output(
    source: str,
    output_dir: Path | None,
    template: str = DEFAULT_TEMPLATE,
    recording: Recording | None = None,
) -> str:
    """``<stem>.mp4`` (or the template's name) in ``output_dir``, or next to the source
    when no directory is set."""
    name = PurePosixPath(source).name if is_uri(source) else Path(source).name
    output = fit_name(output_stem(name, template, recording))
    if output_dir is not None:
        return str(output_dir.expanduser().absolute() / output)
    if is_uri(source):
        return source.rsplit("/", 1)[0] + f"/{output}"
    return str(Path(canonical_source(source)).with_name(output))


class Job(BaseModel):
    """One encode: a source recording, where its output goes, and how to encode it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    id: str = Field(pattern=r"^[0-9a-f]{20}$")
    source: str = Field(min_length=1)
    output: str = Field(min_length=1)
    profile: str = Field(min_length=1, max_length=64)
    priority: int = Field(default=5, ge=0, le=9, description="0 is most urgent")
    submitted_at: datetime = Field(default_factory=now)
    recording: Recording | None = None
    # Submitted by a recorder's start hook: a worker may follow the recording as it grows
    # (worker/broker/live.py holds the live attempt's phase).
    live: bool = False

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(
                f"schema version {value} is newer than this worker's ({SCHEMA_VERSION})"
            )
        return value

    @field_validator("source", "output")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\0" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @classmethod
    def create(
        cls,
        source: str,
        profile: str,
        *,
        output: str | None = None,
        output_dir: Path | None = None,
        priority: int = 5,
        recording: Recording | None = None,
        output_name: str = DEFAULT_TEMPLATE,
        per_output: bool = False,
        live: bool = False,
    ) -> Job:
        """A new job with its id derived from the source's identity and the profile (and,
        with ``per_output``, the given output); its output, unless given, named by the
        ``output_name`` template."""
        canonical = canonical_source(source)
        return cls(
            id=derive_job_id(canonical, profile, output if per_output else None),
            source=canonical,
            output=output or default_output(canonical, output_dir, output_name, recording),
            profile=profile,
            priority=priority,
            recording=recording,
            live=live,
        )

    @classmethod
    def from_payload(cls, payload: object) -> Job:
        """Decode a task argument; anything malformed is a BadInputError naming the field."""
        try:
            return cls.model_validate(payload)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "payload"
            raise BadInputError(f"bad job payload: {field}: {first['msg']}") from e


class EncodeResult(BaseModel):
    """What a finished job produced, as stored in the result backend."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    output: str
    backend: str
    size_bytes: int
    duration_s: float
    source_duration_s: float | None
    video_codec: str
    width: int
    height: int
    audio_streams: int
    encode_seconds: float
    average_fps: float | None
    worker: str = ""
    # What became of the source's ARIB captions (kept, none, off, dropped and why).
    captions: CaptionResult | None = None
    # The output's id in EPGStation's library, once registered (scheduler.epgstation.url).
    epgstation_video_file_id: int | None = None
