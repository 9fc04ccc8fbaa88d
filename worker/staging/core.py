"""What every staging step shares: connecting, retries, scratch names and space, resumable reads."""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Protocol, Self, TypeVar

from worker.settings.staging import LocalLocation, SftpLocation, StagingSettings
from worker.staging.errors import (
    BadUriError,
    IntegrityError,
    LocationError,
    NoSpaceError,
    RemoteNotFoundError,
    TransferError,
)
from worker.staging.local import Files, LocalFiles, free_bytes
from worker.staging.sftp.common import Chunk, Progress, RemoteStat, Sink, SinkError
from worker.staging.sftp.openssh_files import Opening, OpenSshSession
from worker.staging.sftp.paramiko_files import SftpSession
from worker.staging.sftp.ssh_command import ssh_binary
from worker.staging.uri import Target, undefined_location

T = TypeVar("T")
MIB = 1024 * 1024
log = logging.getLogger("kamado.staging")
# ssh reads these paths as config values: whitespace splits them, % and ${ are expanded.
_SSH_UNSAFE_PATH = re.compile(r"[\s\"'\\%$#]")
_told: set[tuple[str, str]] = set()


class Finisher(Protocol):
    """A background download a StagedSource waits for."""

    def finish(self, timeout: float | None = None) -> str: ...


@dataclass
class StagedSource:
    """A source ready for ffmpeg at ``path`` (a mount, a scratch copy, or a FIFO)."""

    uri: str
    path: Path
    size: int
    sha256: str | None = None
    copied: bool = False
    streaming: bool = False
    stream: Finisher | None = field(default=None, repr=False)

    def finish(self, timeout: float | None = None) -> None:
        """Wait for a streamed download to end; raise its StagingError if it failed."""
        if self.stream is not None:
            self.sha256 = self.stream.finish(timeout)


def connect(settings: StagingSettings, name: str) -> Files:
    if not name:
        return LocalFiles()
    location = settings.locations.get(name)
    if location is None:
        raise BadUriError(undefined_location(name), location=name)
    if isinstance(location, LocalLocation):
        return LocalFiles(name)
    ssh = ssh_binary()
    why_not = openssh_unusable(location, ssh)
    if ssh is None or why_not:
        if (name, why_not) not in _told:  # once per location and reason, not per transfer
            _told.add((name, why_not))
            log.warning("location %r uses the slower paramiko transport: %s", name, why_not)
        return SftpSession.connect(
            name, location, window_mb=settings.window_mb, max_requests=settings.max_requests
        )
    return OpenSshSession.connect(name, location, ssh=ssh, max_requests=settings.max_requests)


class Link:
    """A connection to a location opened ahead of use: ssh handshakes while the caller works.

    Only the OpenSSH transport opens early (in its own process, no thread here); for any
    other location, or when the early start fails, ``take`` returns None and the caller
    connects as usual, which reports the failure. ``close`` stops a link nobody took.
    """

    def __init__(self, settings: StagingSettings, name: str) -> None:
        self._opening: Opening | None = None
        location = settings.locations.get(name)
        ssh = ssh_binary()
        if isinstance(location, SftpLocation) and ssh and not openssh_unusable(location, ssh):
            try:
                self._opening = OpenSshSession.begin(
                    name, location, ssh=ssh, max_requests=settings.max_requests
                )
            except LocationError as e:
                log.debug("location %r: no early connection: %s", name, e)

    def take(self) -> Files | None:
        """The session, once its handshake is done; None if there is none to give."""
        opening, self._opening = self._opening, None
        if opening is None:
            return None
        try:
            return opening.finish()
        except LocationError as e:  # the link died while the caller worked: connect afresh
            log.info("location %r: early connection failed (%s); connecting again", opening.name, e)
            return None

    def close(self) -> None:
        """Stop the connection if nobody took it."""
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def openssh_unusable(location: SftpLocation, ssh: str | None) -> str:
    """Why OpenSSH's client cannot carry this location (empty when it can)."""
    if ssh is None:
        return "no OpenSSH client (ssh) is installed"
    for setting, path in (("key_file", location.key_file), ("known_hosts", location.known_hosts)):
        if _SSH_UNSAFE_PATH.search(str(path)):
            return f"{setting} path {str(path)!r} holds characters ssh would expand or split"
    return ""


def with_retries(settings: StagingSettings, attempt: Callable[[int], T]) -> T:
    """Run ``attempt(n)`` until it succeeds or a non-transient error or the last retry."""
    for n in range(settings.retries + 1):
        try:
            return attempt(n)
        except LocationError as e:
            if not e.transient or isinstance(e, NoSpaceError | IntegrityError):
                raise
            if n == settings.retries:
                e.message += f" (gave up after {n + 1} attempts)"
                raise
            time.sleep(settings.retry_delay * 2**n)
    raise AssertionError("unreachable")  # pragma: no cover


def scratch_path(scratch_dir: Path, uri: str) -> Path:
    """Where a source is pulled: a name derived from the URI, keeping a simple suffix."""
    digest = hashlib.sha256(uri.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    suffix = PurePosixPath(uri).suffix
    keep = suffix if 1 < len(suffix) <= 8 and suffix[1:].isalnum() and suffix.isascii() else ""
    return scratch_dir / f"src-{digest}{keep}"


def check_space(settings: StagingSettings, directory: Path, needed: int) -> None:
    """Raise NoSpaceError unless ``needed`` bytes plus ``min_free_mb`` fit in ``directory``."""
    free = free_bytes(directory)
    want = needed + settings.min_free_mb * MIB
    if free < want:
        raise NoSpaceError(
            f"scratch {str(directory)!r}: {free // MIB} MiB free, {want // MIB} MiB needed "
            f"({needed // MIB} MiB file + min_free_mb {settings.min_free_mb}); free space "
            "or point staging.scratch_dir elsewhere",
            path=str(directory),
            free=free,
            needed=want,
        )


def local_source(target: Target) -> StagedSource:
    st = LocalFiles(target.location).stat(target.path)
    if st.is_dir:
        raise RemoteNotFoundError(
            f"source {target.path!r} is a directory, not a recording", path=target.path
        )
    return StagedSource(target.uri, Path(target.path), st.size)


def read_resumable(
    settings: StagingSettings,
    target: Target,
    sink: Sink,
    progress: Progress,
    *,
    files: Files | None = None,
    first: RemoteStat | None = None,
    on_changed: Callable[[RemoteStat], None] | None = None,
    cancel: threading.Event | None = None,
) -> RemoteStat:
    """Read a whole source into ``sink`` from ``progress.done``, reconnecting after drops.

    ``files`` (an open connection) is used for the first attempt and closed. If the source
    changed between attempts, ``on_changed`` resets the sink and the copy restarts at 0;
    without it the read fails.
    """
    held: list[Files] = [files] if files is not None else []
    seen = [first]

    def attempt(_n: int) -> RemoteStat:
        conn = held.pop() if held else connect(settings, target.location)
        try:
            return read_once(conn)
        except SinkError as e:
            raise e.error from None  # the caller's own failure: its handler converts it
        finally:
            conn.close()

    def read_once(conn: Files) -> RemoteStat:
        st = conn.stat(target.path)
        before = seen[0]
        if before is not None and (st.size, st.mtime) != (before.size, before.mtime):
            if on_changed is None:
                raise TransferError(
                    f"{target.describe()!r} changed while being streamed",
                    location=target.location,
                    path=target.path,
                )
            on_changed(st)
            progress.done = 0
        seen[0] = st
        progress.total = st.size
        conn.read_to(target.path, sink, progress, offset=progress.done, size=st.size, cancel=cancel)
        if cancel is not None and cancel.is_set():
            return st
        end = conn.stat(target.path)
        if (end.size, end.mtime) != (st.size, st.mtime):
            raise TransferError(
                f"{target.describe()!r} changed during the transfer (still being recorded?)",
                location=target.location,
                path=target.path,
            )
        return st

    return with_retries(settings, attempt)


class BackgroundSink:
    """Runs a sink (disk or pipe write plus hashing) in its own thread.

    Writing and hashing release the GIL, so they overlap paramiko's packet handling
    instead of taking turns with it: about 1.8x the pull speed on a 2-core machine.
    Bytes handed over count as done; ``drain()`` waits until they are really written.
    """

    def __init__(self, sink: Sink, depth: int = 32) -> None:
        self._sink = sink
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kamado-sink", daemon=True)

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            try:
                if data is None:
                    return
                if self.error is None:
                    self._sink(data)
            except BaseException as e:  # handed to the reading thread, which raises it
                self.error = e
            finally:
                self._queue.task_done()

    def __call__(self, data: Chunk) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(data)

    def drain(self) -> None:
        """Wait until everything handed over is written; raise the writer's error."""
        self._queue.join()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._queue.put(None)
        self._thread.join()
        if kind is None and self.error is not None:
            raise self.error
