"""Bringing a job's source to this machine: in place, pulled to scratch, or streamed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from worker.settings.staging import StagingSettings
from worker.staging.errors import LocationError
from worker.staging.files import ProgressCallback
from worker.staging.pull import discard, pull
from worker.staging.scratch import scratch_path
from worker.staging.source import StagedSource, local_source
from worker.staging.stream import streamed
from worker.staging.uri import resolve


@contextmanager
def stage_in(
    settings: StagingSettings,
    uri: str,
    scratch_dir: Path | None = None,
    *,
    stream: bool | None = None,
    on_progress: ProgressCallback | None = None,
) -> Iterator[StagedSource]:
    """The source of ``uri`` as a local path for the duration of the block; scratch cleaned.

    A local (or path-mapped) source is used where it is. An SFTP source is pulled to
    scratch with its sha256, or with ``stream`` (default: ``mode = "stream"``) fed through
    a FIFO at ``path``: ffmpeg reads it as the download runs; call ``finish()`` after
    ffmpeg exits to learn whether the download itself failed.
    """
    scratch = scratch_dir or settings.scratch_dir
    target = resolve(settings, uri)
    if target.kind == "local":
        yield local_source(target)
        return
    streaming = settings.mode == "stream" if stream is None else stream
    if streaming:
        with streamed(settings, target, scratch, on_progress) as source:
            yield source
        return
    dest = scratch_path(scratch, uri)
    try:
        source = pull(settings, uri, dest, on_progress=on_progress)
    except LocationError as e:
        if not e.transient:
            discard(dest)
        raise  # a transient failure keeps its partial copy for the next attempt to resume
    try:
        yield source
    finally:
        discard(dest)


def clean_scratch(
    settings: StagingSettings, scratch_dir: Path | None = None, *, older_than: float = 86400.0
) -> int:
    """Remove scratch files left by crashed runs, older than ``older_than`` seconds."""
    scratch = scratch_dir or settings.scratch_dir
    removed = 0
    cutoff = time.time() - older_than
    for path in scratch.glob("src-*") if scratch.is_dir() else ():
        with suppress(OSError):
            if path.lstat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
