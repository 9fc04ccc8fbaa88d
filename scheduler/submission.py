"""Building a submission: path mapping, profile, job id, hold and flags, length estimate.

Every entry point (the hooks, `kamado enqueue`, the spool) builds a :class:`Submission`
here and hands it to :func:`scheduler.delivery.deliverer.deliver`; nothing is sent until the whole
submission is valid.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduler.paths import absolute, check_recording, map_source, require_utf8
from scheduler.rules import choose_profile
from worker.jobs import Job, Recording, now
from worker.profiles import get_profile
from worker.settings.model import Settings
from worker.settings.scheduler import HoldSettings

SCHEMA_VERSION = 1
# The flag of a recording its recorder reported as failed (and a live job's reject reason).
FAILED_RECORDING = "the recorder reported the recording as failed"


class Submission(BaseModel):
    """One job to submit, complete and valid: what the spool stores and delivery sends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    job: Job
    origin: str = Field(description="epgstation, chinachu, edcb, enqueue")
    recorder_path: str
    force: bool = False
    held: bool = False
    flags: list[str] = Field(default_factory=list)
    estimate_s: float | None = Field(default=None, description="the recording's length")
    register_in: Literal["epgstation"] | None = Field(
        default=None, description="the recorder's library the output is registered in"
    )
    created_at: datetime = Field(default_factory=now)


def damage(recording: Recording | None, hold: HoldSettings) -> list[str]:
    """The thresholds the recording exceeds, as readable reasons."""
    if recording is None:
        return []
    checks = (
        ("drops", recording.drop_count, hold.drops),
        ("errors", recording.error_count, hold.errors),
        ("scrambled packets", recording.scrambling_count, hold.scrambling),
    )
    return [
        f"{count} {what} (threshold {limit})"
        for what, count, limit in checks
        if count is not None and limit is not None and count > limit
    ]


def estimate_seconds(recording: Recording | None, size: int | None, mbps: float) -> float | None:
    """The recording's length: from the recorder's times, else from its size."""
    if recording is not None and recording.duration_s:
        return recording.duration_s
    if size:
        return round(size * 8 / (mbps * 1e6), 1)
    return None


def prepare(
    settings: Settings,
    path: str,
    *,
    origin: str,
    recording: Recording | None = None,
    profile: str | None = None,
    priority: int | None = None,
    force: bool = False,
    failed: bool = False,
    flags: list[str] | None = None,
    cwd: Path | None = None,
    size: int | None = None,
    output: str | None = None,
    live: bool = False,
) -> Submission | None:
    """A complete submission for one recording, or None when config says to skip it.

    ``output`` is a recorder-side path the recorder chose (EPGStation's encode preset):
    path-mapped like the source, and part of the job's id (each output its own job).
    ``live``: a recording that has just started (a start hook): the file is not checked
    (it may not be there yet), its length comes from the recorder's times, and the job is
    flagged live; its id is the one the finish hook's job gets.
    Raises RecordingError (bad path or file) or BadInputError (unknown profile).
    """
    text = require_utf8(path)
    local = absolute(text, cwd)
    if size is None and not live:
        size = check_recording(Path(local))
    sched = settings.scheduler
    name = profile or choose_profile(settings, recording, local, origin)
    get_profile(name, settings.profiles)
    notes = list(flags or [])
    held = False
    if failed:
        notes.append(FAILED_RECORDING)
        if sched.hold.failed_recordings == "skip":
            return None
        held = sched.hold.failed_recordings == "hold"
    damaged = damage(recording, sched.hold)
    notes.extend(damaged)
    if damaged and sched.hold.action == "hold":
        held = True
    default_priority = sched.backlog_priority if origin == "enqueue" else sched.hook_priority
    if failed and recording is not None:
        recording = recording.model_copy(update={"failed": True})
    job = make_job(
        settings,
        local,
        name,
        recording=recording,
        priority=default_priority if priority is None else priority,
        output=output,
        cwd=cwd,
        live=live,
    )
    return Submission(
        job=job,
        origin=origin,
        recorder_path=local,
        force=force,
        held=held,
        flags=notes,
        estimate_s=estimate_seconds(recording, size, sched.routing.assumed_bitrate_mbps),
    )


def make_job(
    settings: Settings,
    local: str,
    profile: str,
    *,
    recording: Recording | None,
    priority: int,
    output: str | None = None,
    cwd: Path | None = None,
    live: bool = False,
) -> Job:
    """The job for the recording at the recorder's absolute path ``local`` (path-mapped)."""
    path_map = settings.scheduler.path_map
    mapped_output = None
    if output is not None:
        mapped_output = map_source(absolute(require_utf8(output), cwd), path_map)
    return Job.create(
        map_source(local, path_map),
        profile,
        output=mapped_output,
        per_output=mapped_output is not None,
        output_dir=settings.encode.output_dir,
        priority=priority,
        recording=recording,
        output_name=settings.encode.output_name,
        live=live,
    )


def skipped_job_id(
    settings: Settings, path: str, *, origin: str, recording: Recording | None, cwd: Path | None
) -> str:
    """The id of the job a recording config skips would have had (its live job is told)."""
    local = absolute(require_utf8(path), cwd)
    name = choose_profile(settings, recording, local, origin)
    return make_job(settings, local, name, recording=recording, priority=5).id
