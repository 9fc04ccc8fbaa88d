"""``encode.delete_source = "after_verified"``: a recording deleted once its encode is done.

Opt-in, and only in one case: the job is done (its output verified and committed by this
attempt, the registry says done), the recorder reported the recording clean (drop, error
and scrambling counts known and zero, not failed, and no flag the scheduler noted on the
job: a job without that metadata is never deleted), the recording is a local file
outside any ``writable = false`` location, it is still the very file the attempt began
with (same device, inode, size and mtime), and the output is a local, non-empty file
that is not the recording. A recording reached over SFTP is
never deleted: only a local file's identity is checked here. Anything else keeps the
recording and says why in the worker's log.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from worker.errors import KamadoError, StagingError
from worker.jobs import Job, Recording
from worker.outputs.identity import local_fingerprint, local_identity, real_path
from worker.settings.model import Settings
from worker.settings.staging import LocalLocation
from worker.staging.uri import resolve

log = logging.getLogger("kamado.worker")
AFTER_VERIFIED = "after_verified"


@dataclass(frozen=True)
class SourceSeen:
    """The recording as an attempt found it before encoding: its real path and fingerprint."""

    real: str
    fingerprint: str


def damage(recording: Recording | None) -> str | None:
    """Why the recorder's own report forbids deleting the recording, or None when clean."""
    if recording is None:
        return "no recorder metadata (drop and error counts unknown)"
    if recording.failed:
        return "the recorder reported the recording as failed"
    if recording.drop_count is None:
        return "the recorder reported no drop count"
    counts = (
        ("drops", recording.drop_count),
        ("errors", recording.error_count),
        ("scrambled packets", recording.scrambling_count),
    )
    flagged = [f"{n} {what}" for what, n in counts if n]
    return "the recorder flagged " + ", ".join(flagged) if flagged else None


def seen_source(settings: Settings, job: Job) -> SourceSeen | None:
    """The local recording's identity at the start of an attempt (None: not a local file)."""
    if settings.encode.delete_source != AFTER_VERIFIED:
        return None
    try:
        target = resolve(settings.staging, job.source)
    except StagingError:
        return None
    if target.kind != "local":
        return None
    real = real_path(target.path)
    printed = local_fingerprint(real)
    return SourceSeen(real, printed) if printed is not None else None


def _read_only_location(settings: Settings, real: str) -> str | None:
    for name, loc in settings.staging.locations.items():
        inside = isinstance(loc, LocalLocation) and PurePosixPath(real).is_relative_to(
            real_path(str(loc.path))
        )
        if inside and not loc.writable:
            return name
    return None


def _output_refusal(settings: Settings, job: Job, seen: SourceSeen) -> str | None:
    """Why the job's output does not let the recording go (it is not here, or is it)."""
    output = resolve(settings.staging, job.output)
    if output.kind != "local":
        return "the output is not on this machine, so it cannot be told apart from the source"
    out = local_identity(output.path)
    if out.same_file(local_identity(seen.real)):
        return "the output is the same file"
    try:
        st = os.stat(output.path)  # noqa: PTH116 (one stat, not a Path)
    except OSError as e:
        return f"the output {output.path} cannot be checked: {e.strerror or e}"
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return f"the output {output.path} is not a non-empty file"
    return None


def refusal(
    settings: Settings,
    job: Job,
    seen: SourceSeen | None,
    *,
    done: bool,
    flags: Sequence[str] = (),
) -> str | None:
    """Why the recording must be kept, or None when every condition to delete it holds.

    ``flags``: what the scheduler noted on the job over all its submissions (EPGStation
    can fire its failed hook after the finish hook made the job).
    """
    if settings.encode.delete_source != AFTER_VERIFIED:
        return "encode.delete_source is not after_verified"
    if not done:
        return "the job is not done"
    flagged = damage(job.recording)
    if flagged:
        return flagged
    if flags:
        return "the scheduler flagged it: " + "; ".join(flags)
    if resolve(settings.staging, job.source).kind != "local":
        return "it is reached over SFTP (only local recordings are deleted)"
    if seen is None:
        return "it was not a local file when the attempt began"
    location = _read_only_location(settings, seen.real)
    if location is not None:
        return f"it is on location {location!r}, which has writable = false"
    if local_fingerprint(seen.real) != seen.fingerprint:
        return "it changed (or was replaced) since the encode began"
    return _output_refusal(settings, job, seen)


def remove_source(
    settings: Settings,
    job: Job,
    seen: SourceSeen | None,
    *,
    done: bool,
    flags: Callable[[], Sequence[str]] = tuple,
) -> bool:
    """Delete the recording when :func:`refusal` allows it; True when it was deleted.

    Never raises: a refusal, flags that cannot be read, or a failed unlink is logged and
    the recording stays.
    """
    try:
        reason = refusal(settings, job, seen, done=done, flags=flags())
    except KamadoError as e:
        reason = str(e)
    if reason is None and seen is not None:
        try:
            os.unlink(seen.real)  # noqa: PTH108 (the checked real path itself)
        except OSError as e:
            reason = f"cannot delete it: {e.strerror or e}"
        else:
            log.info("job %s: deleted the recording %s (encode.delete_source)", job.id, seen.real)
            return True
    log.info("job %s: kept the recording %s: %s", job.id, job.source, reason)
    return False


def after_done(
    settings: Settings,
    job: Job,
    seen: SourceSeen | None,
    result: dict[str, Any],
    *,
    done: bool,
    flags: Callable[[], Sequence[str]],
) -> dict[str, Any]:
    """The task's result, with ``source_deleted`` when ``encode.delete_source`` is on."""
    if settings.encode.delete_source != AFTER_VERIFIED:
        return result
    deleted = remove_source(settings, job, seen, done=done, flags=flags)
    return {**result, "source_deleted": deleted}
