"""File staging: bring a job's source to this machine and deliver its output.

The encode pipeline calls, with ``settings.staging``:

- :func:`stage_in` (a context manager): the source as a local path, either the shared
  mount itself, a copy pulled to scratch with its sha256, or a FIFO that ffmpeg reads
  while the download runs (``mode = "stream"``); scratch files are removed on exit;
- :func:`stage_out`: push the verified output to the attempt's own temporary name next
  to the destination, hashing the bytes as they go; :meth:`PendingOutput.commit` checks
  the remote size and renames it into place (replacing, or refusing a file that is
  there); a :class:`Link` opened earlier spares the push the SSH handshake;
- :class:`worker.staging.prefetch.Prefetcher`: pull the next job's source meanwhile.

An encode's SFTP output is checked before ffmpeg starts and kept after a failed push by
:mod:`worker.encode.remote_output` (with :mod:`worker.staging.preflight`,
:mod:`worker.staging.identity` and :mod:`worker.staging.outbox`).

A dropped SFTP link is retried (``retries``, doubling ``retry_delay``) and the transfer
resumes where the last acknowledged byte left it. URIs: see :mod:`worker.staging.uri`.
"""

from __future__ import annotations

from worker.settings.staging import StagingSettings
from worker.staging.connection import Link, connect, with_retries
from worker.staging.files import Files
from worker.staging.incoming import clean_scratch, stage_in
from worker.staging.outgoing import PendingOutput, deliver, stage_out
from worker.staging.prefetch import Prefetcher
from worker.staging.pull import discard, pull
from worker.staging.scratch import check_space, scratch_path
from worker.staging.source import StagedSource
from worker.staging.uri import Target, resolve, sftp_uri

__all__ = [
    "Files",
    "Link",
    "PendingOutput",
    "Prefetcher",
    "StagedSource",
    "Target",
    "check_space",
    "clean_scratch",
    "deliver",
    "discard",
    "open_location",
    "pull",
    "resolve",
    "scratch_path",
    "sftp_uri",
    "stage_in",
    "stage_out",
    "with_retries",
]


def open_location(settings: StagingSettings, where: str) -> Files:
    """Connect to a location named by its config name or by any URI on it (close it after)."""
    if where in settings.locations:
        return connect(settings, where)
    return connect(settings, resolve(settings, where).location)
