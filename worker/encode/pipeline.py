"""One job, start to finish: read the source, encode to a temporary name, verify, rename into place.

This is the plain function a Celery task calls; it knows nothing of Celery. The source is
only ever read. The output appears under its final name only after it passed
verification, and a failed attempt leaves no partial file behind.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from worker.broker.claims import Claims
from worker.captions import CaptionPlan, plan_for
from worker.encode.argv import build_command
from worker.encode.audio import plan_audio, read_layouts
from worker.encode.caption_files import (
    caption_result,
    claim_sidecar,
    commit_local_sidecar,
    deliver_remote_sidecar,
    may_replace,
    planned_sidecar,
    sidecar_temp,
    verify_captions,
)
from worker.encode.ffprobe import MediaInfo, check_readable, read_media
from worker.encode.probe_ahead import read_source
from worker.encode.remote_output import RemoteOutput, deliver_remote, prepare_remote, push_kept
from worker.encode.run import run_encode
from worker.encode.verify import verify_output
from worker.errors import EncodeError, EncodeErrorKind, OutputError, OutputRefused, VerifyError
from worker.jobs import EncodeResult, Job, JobState
from worker.live.feed import LiveFeed, LiveInput, live_input
from worker.outputs.identity import local_fingerprint, local_identity, real_path
from worker.outputs.names import temp_name, temp_pattern
from worker.outputs.view import LocalView
from worker.profiles import Backend, Profile, choose_backend, get_profile
from worker.progress import Progress
from worker.settings.model import Settings
from worker.spans import span
from worker.staging.api import StagedSource, Target, resolve, stage_in

log = logging.getLogger("kamado.worker")
NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK}
# Brings a source here for the duration of a block (see worker.staging.api.stage_in).
StageSource = Callable[[str], AbstractContextManager[StagedSource]]


def _nothing() -> None:
    return None


@dataclass
class Attempt:
    """What one attempt at a job may use and whom it tells about its progress."""

    settings: Settings
    backends: list[Backend]
    on_progress: Callable[[Progress], None] = lambda _p: None
    check_cancel: Callable[[], None] = _nothing
    # Called with the temporary output just before it is renamed into place; raising
    # stops the commit (the job registry uses it to check the attempt still holds its lease).
    before_commit: Callable[[Path], None] = lambda _p: None
    worker: str = ""
    # Brings the source here for the block; a worker passes one that takes prefetched
    # copies (worker/runtime/prefetch.py). None: pull it now.
    stage_source: StageSource | None = None
    attempt_id: str = field(default_factory=lambda: secrets.token_hex(4))
    # From the worker's check of the task (worker/encode/output_contract.py): the registry's output
    # claims, and whether the file now at the output is one kamado may replace.
    claims: Claims | None = None
    replace_output: bool = False
    # Called with (place, fingerprint) once the output is in place, so a later attempt or a
    # forced re-run knows kamado wrote that file.
    on_committed: Callable[[str, str], None] = lambda _k, _f: None
    # The VA driver and low-power choice the probe verified for a backend on this GPU
    # (worker/backends/proof.py); a worker passes the cached probe's. None: the configured
    # driver, full power.
    hardware: Callable[[Backend], tuple[str, bool]] | None = None
    # Set for a live job while its recording is still being written: ffmpeg reads the
    # recording as it grows (worker/live/), and the output is verified against the
    # finished file.
    live: LiveFeed | None = None


def temp_output(output: Path, job_id: str, attempt_id: str) -> Path:
    """The hidden name an attempt writes to: short (any output name fits), unique per
    job and attempt, so two never collide."""
    return output.with_name(temp_name(job_id, attempt_id))


def remove_stale_temps(temp: Path, job_id: str) -> None:
    """Delete temp files earlier attempts at this job left (a killed worker cannot clean up).

    Only the lease holder calls this, so no live attempt is writing them.
    """
    for pattern in (temp_pattern(job_id), f"{temp_pattern(job_id)}.*"):  # and caption sidecars
        for stale in temp.parent.glob(pattern):
            if stale != temp and not stale.name.startswith(f"{temp.name}."):
                discard(stale)


def discard(path: Path) -> None:
    """Remove a temporary file; cleanup never raises (a failure is logged, not thrown)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("could not remove %s: %s", path, e.strerror or e)


def check_output_dir(output: Path) -> None:
    """The output's directory must exist and be writable before minutes of encoding."""
    parent = output.parent
    if not parent.is_dir():
        raise OutputError(f"{output}: output directory {parent} does not exist", path=output)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{output}: output directory {parent} is not writable", path=output)


def place_new(temp: Path, output: Path) -> None:
    """Give ``temp`` the name ``output`` only if nothing has that name (never replacing)."""
    try:
        os.link(temp, output)
    except FileExistsError:
        raise OutputError(
            f"{output}: a file appeared there while encoding; kamado did not write it and "
            "left it alone",
            path=output,
        ) from None
    except OSError as e:
        if e.errno not in NO_HARD_LINKS:
            raise
        # A file system without hard links (some network mounts): check, then rename.
        if os.path.lexists(output):
            raise OutputError(
                f"{output}: a file appeared there while encoding; left alone", path=output
            ) from None
        temp.rename(output)
        return
    temp.unlink()


def _fsync_quietly(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    except OSError:
        pass  # the commit's own fsync reports it


def early_sync(path: Path) -> threading.Thread:
    """Start writing ``path`` back to disk in a thread; join it before the commit."""
    thread = threading.Thread(target=_fsync_quietly, args=(path,), name="early-fsync", daemon=True)
    thread.start()
    return thread


def commit(temp: Path, output: Path, *, replace: bool = False) -> None:
    """Move the verified file into place atomically and make it durable.

    Without ``replace`` nothing at ``output`` is ever replaced: the file is linked in
    (which fails if a name appeared there meanwhile) and its temporary name removed.
    """
    try:
        with temp.open("rb") as fh:
            os.fsync(fh.fileno())
        if replace:
            temp.replace(output)
        else:
            place_new(temp, output)
        dir_fd = os.open(output.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise OutputError(f"{output}: cannot move the output into place: {e.strerror}") from e


def encode_job(job: Job, attempt: Attempt) -> EncodeResult:
    """Run one attempt at a job and return what it produced; raise a KamadoError if not."""
    settings = attempt.settings
    if resolve(settings.staging, job.output).kind == "local":
        return _encode_job(job, attempt, None)
    # A remote output is checked before anything is pulled or encoded, on the connection
    # its push will use; a verified output an earlier attempt kept here is only pushed.
    with prepare_remote(job, attempt) as remote:
        job = job.model_copy(update={"output": remote.output})
        kept = remote.kept()
        if kept is not None:
            return push_kept(job, attempt, remote, kept)
        return _encode_job(job, attempt, remote)


def _encode_job(job: Job, attempt: Attempt, remote: RemoteOutput | None) -> EncodeResult:
    settings = attempt.settings
    profile = get_profile(job.profile, settings.profiles)
    backend = choose_backend(profile, attempt.backends)
    destination = resolve(settings.staging, job.output)
    origin = resolve(settings.staging, job.source)
    if attempt.live is not None:
        return _encode_live(job, attempt, (backend, profile), origin, destination, remote)
    if origin.kind == "local":
        check_readable(Path(origin.path))  # the clearest words for a local file's problem
    attempt.on_progress(Progress(state=JobState.STAGING, backend=backend.value))
    # Sources are pulled (or used in place on a shared mount), never streamed here:
    # ffprobe must read the file before ffmpeg does.
    stage = attempt.stage_source or (lambda uri: stage_in(settings.staging, uri, stream=False))
    with stage(job.source) as staged:
        source = staged.path
        temp = _temp_for(job, attempt, source, destination)
        try:
            return _encode_and_commit(
                job, attempt, backend, profile, source, temp, destination, remote
            )
        finally:
            _discard_temps(temp)


def _temp_for(job: Job, attempt: Attempt, source: Path, destination: Target) -> Path:
    """The attempt's temporary output (next to a local output, in scratch for a remote
    one), after checking a local output is not the source; stale temps removed."""
    if destination.kind == "local":
        output = Path(destination.path)
        if local_identity(str(output)).same_file(local_identity(str(source))):
            raise OutputRefused(f"{output}: the output would overwrite the source", path=output)
        check_output_dir(output)
        temp = temp_output(output, job.id, attempt.attempt_id)
    else:
        scratch = attempt.settings.staging.scratch_dir
        scratch.mkdir(parents=True, exist_ok=True)
        temp = temp_output(scratch / Path(destination.path).name, job.id, attempt.attempt_id)
    remove_stale_temps(temp, job.id)
    return temp


def _discard_temps(temp: Path) -> None:
    discard(temp)
    for fmt in ("srt", "ass"):
        discard(sidecar_temp(temp, fmt))


def _encode_live(
    job: Job,
    attempt: Attempt,
    chosen: tuple[Backend, Profile],
    origin: Target,
    destination: Target,
    remote: RemoteOutput | None,
) -> EncodeResult:
    """A live attempt: probe the recording's first bytes, encode it through a FIFO as it
    grows, verify the output against the finished recording (worker/live/)."""
    assert attempt.live is not None
    backend, profile = chosen
    settings = attempt.settings
    attempt.on_progress(Progress(state=JobState.STAGING, backend=backend.value))
    temp = _temp_for(job, attempt, Path(origin.path), destination)
    name = f"{job.id}-{attempt.attempt_id}"
    try:
        with live_input(settings, origin, attempt.live, name) as live:
            return _encode_and_commit(
                job, attempt, backend, profile, live.fifo, temp, destination, remote, live=live
            )
    finally:
        _discard_temps(temp)


def _place_sidecar(
    job: Job,
    attempt: Attempt,
    captions: CaptionPlan,
    destination: Target,
    remote: RemoteOutput | None,
) -> tuple[str | None, bool]:
    """Where the caption sidecar goes (claimed for the job) and whether it may replace
    what is there; (None, False) when the plan writes no sidecar."""
    sidecar = planned_sidecar(job.output if remote is not None else destination.path, captions)
    if sidecar is None:
        return None, False
    view = LocalView() if remote is None else remote.view
    if attempt.claims is not None:
        claim_sidecar(attempt.claims, view, sidecar, job.id, job.source)
    replace = may_replace(
        sidecar, view, attempt.claims, replace_existing=attempt.settings.encode.replace_existing
    )
    return sidecar, replace


@contextmanager
def _named_for_output(job: Job, temp: Path) -> Iterator[None]:
    """A failed verification says which output it was for, not the temp file's name that
    a user never sees (the encode is discarded: the output is not written)."""
    try:
        yield
    except VerifyError as e:
        text = str(e).replace(str(temp), job.output)  # a sidecar's temp too: output.srt
        raise VerifyError(f"{text} (the encode was discarded)", path=job.output) from e


def _source_info(
    job: Job, settings: Settings, profile: Profile, probed: Path, *, live: bool
) -> MediaInfo:
    """The source's streams (a live job's: its first bytes, which may end mid-packet)."""
    with span(job.id, "encode.source_probe"):
        if live:  # the head of a growing recording: it may end mid-packet
            info = read_media(
                settings.encode.ffprobe, probed, service_id=profile.service_id, reject_cut_ts=False
            )
        else:
            info = read_source(settings.encode.ffprobe, probed, service_id=profile.service_id)
    return read_layouts(settings.encode.ffmpeg, probed, info, profile.audio)


def _cancel_check(attempt: Attempt, live: LiveInput | None) -> Callable[[], None]:
    """What ffmpeg's watchdog calls: the job's cancel check, and a live feed's failure."""
    if live is None:
        return attempt.check_cancel

    def check() -> None:
        attempt.check_cancel()
        live.check()

    return check


def _encode_and_commit(
    job: Job,
    attempt: Attempt,
    backend: Backend,
    profile: Profile,
    source: Path,
    temp: Path,
    destination: Target,
    remote: RemoteOutput | None,
    *,
    live: LiveInput | None = None,
) -> EncodeResult:
    settings = attempt.settings
    probed = source if live is None else live.head
    info = _source_info(job, settings, profile, probed, live=live is not None)
    recorded = job.recording.duration_s if job.recording else None
    duration = recorded if live is not None else (info.duration_s or recorded)

    captions = plan_for(
        profile.captions, info.captions, settings.encode.ffmpeg, lambda f: sidecar_temp(temp, f)
    )
    sidecar, sidecar_replace = _place_sidecar(job, attempt, captions, destination, remote)
    if attempt.hardware is not None:
        driver, low_power = attempt.hardware(backend)
    else:
        driver, low_power = settings.encode.vaapi_driver, False
    command = build_command(
        backend,
        profile,
        info,
        source,
        temp,
        ffmpeg=settings.encode.ffmpeg,
        render_node=settings.encode.render_node,
        vaapi_driver=driver,
        low_power=low_power,
        captions=captions,
    )
    started = time.monotonic()
    try:
        attempt.on_progress(Progress(state=JobState.ENCODING, backend=backend.value))
        with span(job.id, "encode.ffmpeg"):
            final = run_encode(
                command,
                source=source,
                duration_s=duration,
                on_progress=attempt.on_progress,
                check_cancel=_cancel_check(attempt, live),
                progress_interval=settings.encode.progress_interval,
                stall_timeout=settings.encode.stall_timeout,
            )
    except EncodeError as e:
        if e.kind is EncodeErrorKind.DISK:
            raise OutputError(
                f"{job.output}: no space left on the output file system ({e})", path=job.output
            ) from e
        raise
    seconds = time.monotonic() - started
    attempt.on_progress(Progress(state=JobState.VERIFYING, percent=100.0, backend=backend.value))
    audio_plan = plan_audio(profile.audio, info)
    if live is not None:
        # ffmpeg read everything the feed gave it; the output answers to the whole file.
        live.finish()
        with span(job.id, "encode.final_probe"):
            info = read_media(
                settings.encode.ffprobe, live.final_source(), service_id=profile.service_id
            )
    written = local_fingerprint(str(temp))
    sidecar_written = local_fingerprint(str(captions.sidecar_temp or temp))
    # The disk writes the file back while ffprobe reads it: the commit's fsync then finds
    # (almost) nothing left to write. Only an overlap: the commit still fsyncs.
    early = None if remote is not None else early_sync(temp)
    with span(job.id, "encode.verify"), _named_for_output(job, temp):
        out_info = verify_output(
            temp,
            info,
            settings.verify,
            ffprobe=settings.encode.ffprobe,
            audio=audio_plan,
        )
        had_text = verify_captions(settings.encode.ffprobe, temp, captions)
    size = temp.stat().st_size
    video = out_info.video
    assert video is not None  # verify_output guarantees it
    result = EncodeResult(
        job_id=job.id,
        output=job.output,
        backend=backend.value,
        size_bytes=size,
        duration_s=out_info.duration_s or 0.0,
        source_duration_s=info.duration_s,
        video_codec=video.codec,
        width=video.width,
        height=video.height,
        audio_streams=len(out_info.audio_codecs),
        encode_seconds=round(seconds, 3),
        average_fps=round(final.frame / seconds, 2) if seconds > 0 and final.frame else None,
        worker=attempt.worker,
        captions=caption_result(captions, sidecar if had_text else None, had_text=had_text),
    )
    if remote is not None:
        if sidecar is not None and had_text:  # first, as for a local output
            deliver_remote_sidecar(
                remote,
                captions,
                sidecar,
                written=sidecar_written,
                replace=sidecar_replace,
                before_commit=lambda: attempt.before_commit(temp),
                on_committed=attempt.on_committed,
            )
        with span(job.id, "encode.push"):
            deliver_remote(attempt, remote, temp, written, result)
        return result
    if destination.kind == "local":
        # The file moved into place is the one verified: same inode, size and mtime.
        if local_fingerprint(str(temp)) != written:
            raise OutputError(f"{temp}: changed after verification; not committed", path=temp)
        if early is not None:
            early.join()
        with span(job.id, "encode.guard_commit"):
            attempt.before_commit(temp)
        if sidecar is not None and had_text:  # first: an MP4 in place has its sidecar too
            commit_local_sidecar(
                captions,
                sidecar,
                written=sidecar_written,
                replace=sidecar_replace,
                commit=lambda t, o, r: commit(t, o, replace=r),
                on_committed=attempt.on_committed,
            )
        with span(job.id, "encode.commit"):
            commit(temp, Path(destination.path), replace=attempt.replace_output)
        with span(job.id, "encode.mark_written"):
            committed = local_fingerprint(destination.path)
            if committed is not None:
                attempt.on_committed(real_path(destination.path), committed)
    return result
