"""Delivering an output: push to a temporary name, rename into place on commit.

Each attempt pushes to its own short temporary name (``.kamado-<tag>.part``, the tag being
the job and attempt ids), so two pushes of one output never share a file. The bytes sent
are hashed as they stream; a push whose hash differs from the verified file's, or whose
remote size changed before the rename, is never committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Self

from worker.settings.staging import StagingSettings
from worker.staging.connection import Link, connect, with_retries
from worker.staging.errors import (
    AccessDeniedError,
    IntegrityError,
    LocationError,
    NoSpaceError,
    OutputExistsError,
    RemoteNotFoundError,
    TransferError,
)
from worker.staging.files import Chunk, Files, ProgressCallback, RemoteStat, TransferProgress
from worker.staging.local import LocalFiles
from worker.staging.scratch import MIB
from worker.staging.sink import BackgroundSink
from worker.staging.uri import Target, resolve

TEMP_PREFIX = ".kamado-"
TEMP_SUFFIX = ".part"
_TAG = re.compile(r"^[0-9A-Za-z_-]{1,48}$")


def temp_name(final: str, tag: str) -> str:
    """The hidden temporary name one attempt pushes an output to, next to its final name.

    ``tag`` (letters, digits, ``-``, ``_``; at most 48) names the job and the attempt, so the
    name is unique per attempt and fits any file system whatever the output is called.
    """
    if not _TAG.match(tag):
        raise ValueError(f"temporary-name tag {tag!r}: use 1-48 letters, digits, '-' or '_'")
    return str(PurePosixPath(final).parent / f"{TEMP_PREFIX}{tag}{TEMP_SUFFIX}")


def new_tag() -> str:
    """A tag for a push that belongs to no job attempt (a one-off delivery)."""
    return secrets.token_hex(8)


class DigestingReader:
    """Reads a local file for a push and hashes, in order, the bytes handed to the transport.

    The hashing runs in its own thread (sha256 releases the GIL), so it overlaps the reads
    and pipe writes of the push instead of taking turns with them. A resumed push seeks
    back to the last acknowledged byte; the hash is then rebuilt up to there, so at the end
    it covers exactly the bytes that make up the remote file. Use it as a context manager.
    """

    def __init__(self, raw: io.BufferedReader) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.at = 0
        self._sink = BackgroundSink(self._update, depth=8)

    def _update(self, data: Chunk) -> None:
        self.hash.update(data)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset`` (from the start only), rehashing when that is not where we are."""
        if whence != 0:
            raise ValueError("a push only seeks from the start")
        if offset != self.at:
            self._sink.drain()
            self.hash = hashlib.sha256()
            self.raw.seek(0)
            self.at = 0
            while self.at < offset:
                data = self.raw.read(min(MIB, offset - self.at))
                if not data:
                    break
                self.hash.update(data)
                self.at += len(data)
        return self.raw.seek(offset)

    def readinto(self, view: memoryview, /) -> int:
        """Fill ``view`` and hash what was read (a copy: the caller reuses its buffer)."""
        count = self.raw.readinto(view)
        self._sink(bytes(view[:count]))
        self.at += count
        return count

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes and hash them."""
        data = self.raw.read(size)
        self._sink(data)
        self.at += len(data)
        return data

    def hexdigest(self) -> str:
        """The sha256 of the bytes read so far."""
        self._sink.drain()
        return self.hash.hexdigest()

    def __enter__(self) -> Self:
        self._sink.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sink.__exit__(None, None, None)


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
    sha256: str = ""
    replace: bool = True
    final: RemoteStat | None = None  # the committed file, as the server stated it
    committed: bool = False
    aborted: bool = False
    files: Files | None = field(default=None, repr=False)

    def commit(self) -> None:
        """Rename the pushed file to its final name, atomically, once its size is checked.

        With ``replace`` (the default) an older file there is replaced; without, the rename
        fails with OutputExistsError if a file appeared there meanwhile.
        """
        if self.committed:
            return
        if self.aborted:
            raise TransferError(f"output {self.target.describe()!r} was already aborted")

        def attempt(n: int) -> None:
            held = self._take()
            files = held if held is not None else connect(self.settings, self.target.location)
            try:
                landed = files.stat(self.temp).size
                if landed != self.size:
                    raise IntegrityError(
                        f"{self.target.describe()!r}: the pushed file changed before the "
                        f"rename ({landed} bytes, {self.size} pushed); not committed",
                        location=self.target.location,
                        path=self.temp,
                    )
                files.rename(self.temp, self.target.path, replace=self.replace)
                self.final = files.stat(self.target.path)
            except RemoteNotFoundError:
                # A retry after a lost answer: the first rename may already have happened.
                if n == 0 or files.stat(self.target.path).size != self.size:
                    raise
            finally:
                files.close()

        try:
            with_retries(self.settings, attempt)
        except (IntegrityError, OutputExistsError):
            self.abort()  # the pushed file is no use to anyone now
            raise
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
    files: Files | None = None,
    tag: str | None = None,
    expected_sha256: str | None = None,
    replace: bool = True,
) -> PendingOutput:
    """Push ``local_file`` next to ``dest_uri`` under a temporary name, fsynced and checked.

    Nothing appears at the destination until the caller calls ``commit()``; ``abort()`` (or
    leaving a ``with`` block uncommitted) removes the temporary file. ``tag`` names the
    attempt (see :func:`temp_name`; default: a random one). The bytes sent are hashed as
    they go; with ``expected_sha256`` (the verified file's) a push whose bytes differ raises
    IntegrityError and leaves nothing behind. ``replace`` is handed to the commit.
    ``link`` or ``files``, a connection to the destination opened earlier, is used if it
    still works.
    """
    target = resolve(settings, dest_uri)
    given = [files] if files is not None else []
    require_writable(settings, target)
    size = LocalFiles().stat(str(local_file)).size
    temp = temp_name(target.path, tag or new_tag())
    progress = TransferProgress(0, size, on_progress)
    held: list[Files] = []
    with (
        LocalFiles().errors("read", str(local_file)),
        local_file.open("rb") as raw,
        DigestingReader(raw) as source,
    ):

        def attempt(n: int) -> None:
            early = given.pop() if given else None
            if early is None and link is not None and n == 0:
                early = link.take()
            conn = early if early is not None else connect(settings, target.location)
            try:
                if n == 0:
                    check_free_space(settings, conn, target, size)
                conn.write_from(source, temp, progress, offset=progress.done, size=size)
                landed = conn.stat(temp).size
                if landed != size:
                    raise TransferError(
                        f"{target.describe()!r}: pushed {landed} of {size} bytes",
                        location=target.location,
                        path=temp,
                    )
                _check_digest(target, temp, source.hexdigest(), expected_sha256)
            except BaseException:
                conn.close()
                raise
            held.append(conn)  # kept for the commit

        try:
            with_retries(settings, attempt)
        except LocationError:
            PendingOutput(settings, target, temp, size).abort()
            raise
        digest = source.hexdigest()
    return PendingOutput(
        settings, target, temp, size, sha256=digest, replace=replace, files=held[0]
    )


def require_writable(settings: StagingSettings, target: Target) -> None:
    """Refuse an output on a location configured ``writable = false``."""
    location = settings.locations.get(target.location)
    if location is not None and not location.writable:
        raise AccessDeniedError(
            f"location {target.location!r} is read-only (writable = false); "
            f"cannot deliver {target.path!r}",
            location=target.location,
            path=target.path,
        )


def _check_digest(target: Target, temp: str, sent: str, expected: str | None) -> None:
    if expected is not None and sent != expected:
        raise IntegrityError(
            f"{target.describe()!r}: the bytes pushed (sha256 {sent[:16]}...) are not the "
            f"verified file (sha256 {expected[:16]}...): it changed after verification; "
            "not committed",
            location=target.location,
            path=temp,
        )


def deliver(settings: StagingSettings, local_file: Path, dest_uri: str) -> None:
    """Push and commit at once, for callers that verified ``local_file`` beforehand."""
    stage_out(settings, local_file, dest_uri).commit()


def check_free_space(settings: StagingSettings, files: Files, target: Target, size: int) -> None:
    """Raise NoSpaceError unless ``size`` bytes plus ``min_free_mb`` fit where ``target`` goes.

    Unknown space (a server without statvfs@openssh.com) passes: the push reports a full
    disk when it meets one.
    """
    space = files.disk_space(str(PurePosixPath(target.path).parent))
    want = size + settings.min_free_mb * MIB
    if space is None or (space.free >= want and space.free > 0):
        return
    what = f"{size // MIB} MiB output + " if size else ""
    raise NoSpaceError(
        f"{target.describe()!r}: {space.free // MIB} MiB free at the destination, "
        f"{want // MIB} MiB needed ({what}min_free_mb {settings.min_free_mb}); free space there",
        location=target.location,
        path=target.path,
        free=space.free,
        needed=want,
    )
