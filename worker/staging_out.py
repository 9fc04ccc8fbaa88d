"""Delivering an output: push to a temporary name, rename into place on commit."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from worker.settings_staging import StagingSettings
from worker.sftp_common import Progress, ProgressCallback
from worker.staging_core import MIB, Link, connect, with_retries
from worker.staging_errors import (
    AccessDeniedError,
    LocationError,
    NoSpaceError,
    RemoteNotFoundError,
    TransferError,
)
from worker.staging_local import Files, LocalFiles
from worker.staging_uri import Target, resolve


def temp_name(final: str) -> str:
    """The hidden temporary name an output is pushed to, next to its final name."""
    path = PurePosixPath(final)
    digest = hashlib.sha256(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return str(path.parent / f".kamado-{digest}.part")


@dataclass
class PendingOutput:
    """An output pushed under a temporary name; ``commit`` renames it into place.

    It holds the connection the push used, so the rename needs no new SSH handshake
    (about a quarter of a second); ``commit`` and ``abort`` close it.
    """

    settings: StagingSettings
    target: Target
    temp: str
    size: int
    committed: bool = False
    aborted: bool = False
    files: Files | None = field(default=None, repr=False)

    def commit(self) -> None:
        """Rename the pushed file to its final name (atomic, replacing an older one)."""
        if self.committed:
            return
        if self.aborted:
            raise TransferError(f"output {self.target.describe()!r} was already aborted")

        def attempt(n: int) -> None:
            held = self._take()
            files = held if held is not None else connect(self.settings, self.target.location)
            try:
                files.rename(self.temp, self.target.path)
            except RemoteNotFoundError:
                # A retry after a lost answer: the first rename may already have happened.
                if n == 0 or files.stat(self.target.path).size != self.size:
                    raise
            finally:
                files.close()

        with_retries(self.settings, attempt)
        self.committed = True

    def abort(self) -> None:
        """Remove the temporary file (best effort); the final name is never touched."""
        if self.committed or self.aborted:
            return
        self.aborted = True
        held = self._take()
        with contextlib.suppress(LocationError):
            files = held if held is not None else connect(self.settings, self.target.location)
            try:
                files.remove(self.temp)
            finally:
                files.close()

    def _take(self) -> Files | None:
        files, self.files = self.files, None
        return files

    def __enter__(self) -> PendingOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.abort()


def stage_out(
    settings: StagingSettings,
    local_file: Path,
    dest_uri: str,
    *,
    on_progress: ProgressCallback | None = None,
    link: Link | None = None,
) -> PendingOutput:
    """Push ``local_file`` next to ``dest_uri`` under a temporary name, fsynced and size-checked.

    Nothing appears at the destination until the caller verifies and calls ``commit()``;
    ``abort()`` (or leaving a ``with`` block uncommitted) removes the temporary file.
    ``link``, a connection to the destination opened earlier, is used if it still works.
    """
    target = resolve(settings, dest_uri)
    location = settings.locations.get(target.location)
    if location is not None and not location.writable:
        raise AccessDeniedError(
            f"location {target.location!r} is read-only (writable = false); "
            f"cannot deliver {target.path!r}",
            location=target.location,
            path=target.path,
        )
    size = LocalFiles().stat(str(local_file)).size
    temp = temp_name(target.path)
    progress = Progress(0, size, on_progress)
    held: list[Files] = []
    with LocalFiles().errors("read", str(local_file)), local_file.open("rb") as source:

        def attempt(n: int) -> None:
            early = link.take() if link is not None and n == 0 else None
            files = early if early is not None else connect(settings, target.location)
            try:
                if n == 0:
                    _check_room(settings, files, target, size)
                files.write_from(source, temp, progress, offset=progress.done, size=size)
                landed = files.stat(temp).size
                if landed != size:
                    raise TransferError(
                        f"{target.describe()!r}: pushed {landed} of {size} bytes",
                        location=target.location,
                        path=temp,
                    )
            except BaseException:
                files.close()
                raise
            held.append(files)  # kept for the commit

        try:
            with_retries(settings, attempt)
        except LocationError:
            PendingOutput(settings, target, temp, size).abort()
            raise
    return PendingOutput(settings, target, temp, size, files=held[0])


def deliver(settings: StagingSettings, local_file: Path, dest_uri: str) -> None:
    """Push and commit at once, for callers that verified ``local_file`` beforehand."""
    stage_out(settings, local_file, dest_uri).commit()


def _check_room(settings: StagingSettings, files: Files, target: Target, size: int) -> None:
    space = files.disk_space(str(PurePosixPath(target.path).parent))
    want = size + settings.min_free_mb * MIB
    if space is not None and space.free < want:
        raise NoSpaceError(
            f"{target.describe()!r}: {space.free // MIB} MiB free at the destination, "
            f"{want // MIB} MiB needed ({size // MIB} MiB output + min_free_mb "
            f"{settings.min_free_mb}); free space there",
            location=target.location,
            path=target.path,
            free=space.free,
            needed=want,
        )
