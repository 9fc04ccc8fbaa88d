"""Following a growing recording: its first bytes for the probe, then everything into ffmpeg.

A live attempt reads the recording as the recorder writes it, on this machine or over
SFTP (the same :class:`worker.staging.files.Files` every transfer uses), and feeds it into
a FIFO that ffmpeg reads. It never writes the recording. It stops with
:class:`LiveStopped` when the live path can no longer give the right file: the file
shrank or was replaced, the link stayed down past the staging retries, the recording
did not appear, the finish hook never came, or the recorder reported it failed. The
attempt then falls back to an ordinary job (worker/live/attempt.py).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from worker.broker.live import Phase
from worker.errors import KamadoError
from worker.settings.live import LiveSettings
from worker.settings.staging import StagingSettings
from worker.staging.connection import connect
from worker.staging.errors import LocationError, RemoteNotFoundError
from worker.staging.files import Chunk, Files, RemoteStat, TransferProgress
from worker.staging.stream import open_fifo_writer
from worker.staging.uri import Target

__all__ = ["Follower", "LiveStopped", "Position", "read_head"]

log = logging.getLogger("kamado.live")
# The bytes whose hash tells a replaced recording from the one being followed.
IDENTITY_BYTES = 64 * 1024
PIPE_BUFFER = 1024 * 1024


class LiveStopped(KamadoError):
    """Raised when a live attempt cannot follow its recording any more; the job then runs
    as an ordinary job after the finish hook (never failed for it)."""


@dataclass
class Position:
    """How far the live attempt is: bytes fed to ffmpeg, bytes the recording has, and when
    the recording reached each size (for the lag behind it)."""

    fed: int = 0
    size: int = 0
    seen: list[tuple[float, int]] = field(default_factory=list)

    def grew(self, size: int, when: float) -> None:
        """Note the recording's size at ``when``."""
        if size > self.size or not self.seen:
            self.size = size
            self.seen.append((when, size))
            del self.seen[:-4096]

    def lag_s(self, now: float) -> float | None:
        """Seconds since the recording held as many bytes as ffmpeg has been fed (0 when
        the feed is at the end of the file), or None before anything was seen."""
        if not self.seen:
            return None
        if self.fed >= self.size:
            return 0.0
        for when, size in self.seen:
            if size > self.fed:
                return max(now - when, 0.0)
        return 0.0


PhaseReader = Callable[[], Phase | None]


class _Source:
    """The recording on its location, reconnecting after a dropped link."""

    def __init__(self, staging: StagingSettings, target: Target) -> None:
        self.staging = staging
        self.target = target
        self.files: Files | None = None
        self.identity: str | None = None  # sha256 of the first IDENTITY_BYTES
        self.inode: tuple[int, int] | None = None

    def _open(self) -> Files:
        if self.files is None:
            self.files = connect(self.staging, self.target.location)
        return self.files

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
            self.files = None

    def retrying(self, what: Callable[[Files], object], cancel: threading.Event) -> object:
        """Run ``what`` on the connection; a transient failure reconnects, up to the
        staging retries, and checks the file is still the one being followed."""
        delay = self.staging.retry_delay
        for n in range(self.staging.retries + 1):
            try:
                return what(self._open())
            except LocationError as e:
                if isinstance(e, RemoteNotFoundError) or not e.transient:
                    raise
                self.close()
                if n == self.staging.retries:
                    raise LiveStopped(
                        f"{self.target.describe()}: the link stayed down after "
                        f"{self.staging.retries} retries: {e}"
                    ) from e
                log.warning("live %s: %s; reconnecting in %g s", self.target.describe(), e, delay)
                if cancel.wait(delay):
                    raise LiveStopped("stopped") from e
                delay *= 2
                if self.identity is not None:
                    self.check_identity()
        raise AssertionError("unreachable")

    def stat(self, cancel: threading.Event) -> RemoteStat:
        st = self.retrying(lambda f: f.stat(self.target.path), cancel)
        assert isinstance(st, RemoteStat)
        if self.target.kind == "local":
            try:
                real = Path(self.target.path).stat()
            except OSError:
                raise LiveStopped(f"{self.target.path}: the recording disappeared") from None
            inode = (real.st_dev, real.st_ino)
            if self.inode is None:
                self.inode = inode
            elif inode != self.inode:
                raise LiveStopped(f"{self.target.path}: the recording was replaced by another file")
        return st

    def read(
        self, sink: Callable[[Chunk], object], offset: int, size: int, cancel: threading.Event
    ) -> None:
        progress = TransferProgress(offset, size)

        def once(files: Files) -> None:
            files.read_to(
                self.target.path, sink, progress, offset=progress.done, size=size, cancel=cancel
            )

        self.retrying(once, cancel)

    def first_bytes(self, count: int, cancel: threading.Event) -> bytes:
        parts: list[bytes] = []
        self.read(lambda data: parts.append(bytes(data)), 0, count, cancel)
        return b"".join(parts)

    def check_identity(self) -> None:
        """The first bytes still hash as they did: the same recording (SFTP has no inode)."""
        if self.identity is None:
            return
        files = self._open()
        parts: list[bytes] = []
        files.read_to(
            self.target.path,
            lambda data: parts.append(bytes(data)),
            TransferProgress(0, IDENTITY_BYTES),
            offset=0,
            size=IDENTITY_BYTES,
        )
        if hashlib.sha256(b"".join(parts)).hexdigest() != self.identity:
            raise LiveStopped(
                f"{self.target.describe()}: the recording was replaced (its first bytes changed)"
            )


def _wait_for_file(
    source: _Source, settings: LiveSettings, phase: PhaseReader, cancel: threading.Event
) -> RemoteStat:
    """The recording's first stat once it exists and has bytes (it may not yet at start)."""
    give_up = time.monotonic() + settings.start_wait
    while True:
        try:
            st = source.stat(cancel)
            if st.is_dir:
                raise LiveStopped(f"{source.target.describe()}: is a directory, not a recording")
            if st.size > 0:
                return st
        except RemoteNotFoundError:
            pass
        _check_phase(phase(), source.target)
        if time.monotonic() > give_up:
            raise LiveStopped(
                f"{source.target.describe()}: the recording did not appear within "
                f"{settings.start_wait:g} s (live.start_wait)"
            )
        if cancel.wait(settings.poll):
            raise LiveStopped("stopped")


def _check_phase(phase: Phase | None, target: Target) -> None:
    if phase in (Phase.REJECTED, Phase.ORDINARY, Phase.ABANDONED, None):
        raise LiveStopped(f"{target.describe()}: the live path was ended ({phase or 'no phase'})")


def read_head(
    staging: StagingSettings,
    settings: LiveSettings,
    target: Target,
    head: Path,
    phase: PhaseReader,
    cancel: threading.Event,
) -> int:
    """Copy the recording's first ``head_bytes`` to ``head`` (fewer once it has grown for
    ``head_wait`` seconds, or when the finish hook came); the bytes copied."""
    source = _Source(staging, target)
    try:
        st = _wait_for_file(source, settings, phase, cancel)
        first = time.monotonic()
        while st.size < settings.head_bytes:
            now_phase = phase()
            _check_phase(now_phase, target)
            if now_phase is Phase.FINISHED or time.monotonic() - first >= settings.head_wait:
                break
            if cancel.wait(settings.poll):
                raise LiveStopped("stopped")
            st = source.stat(cancel)
        count = min(st.size, settings.head_bytes)
        with head.open("wb") as out:
            source.read(out.write, 0, count, cancel)
        return count
    finally:
        source.close()


class Follower:
    """A thread that feeds the growing recording into ``fifo`` (and ``copy``, for a remote
    recording verified after the encode) until the finish hook came and the file stopped
    growing; :meth:`finish` returns the final size or raises LiveStopped."""

    def __init__(
        self,
        staging: StagingSettings,
        settings: LiveSettings,
        target: Target,
        fifo: Path,
        *,
        phase: PhaseReader,
        deadline: float | None = None,
        copy: Path | None = None,
    ) -> None:
        self.staging = staging
        self.settings = settings
        self.target = target
        self.fifo = fifo
        self.copy = copy
        self.phase = phase
        self.deadline = deadline
        self.position = Position()
        self.error: KamadoError | None = None
        self.cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kamado-live", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def failed(self) -> KamadoError | None:
        """The reason the feed stopped early, once it did (None while it runs or ended well)."""
        return None if self._thread.is_alive() else self.error

    def stop(self) -> None:
        """Stop feeding (a writer still waiting for ffmpeg gives up)."""
        self.cancel.set()
        self._thread.join(30)

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the feed to end; the recording's final size, or raise why it stopped."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise LiveStopped(f"{self.target.describe()}: the feed did not end in {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self.position.fed

    def _run(self) -> None:
        source = _Source(self.staging, self.target)
        copy = None
        try:
            fd = open_fifo_writer(self.fifo, self.cancel)
            if fd is None:
                return
            copy = self.copy.open("wb") if self.copy is not None else None
            with os.fdopen(fd, "wb", buffering=PIPE_BUFFER) as out:

                def sink(data: Chunk) -> None:
                    out.write(data)
                    if copy is not None:
                        copy.write(data)
                    self.position.fed += len(data)

                self._follow(source, sink)
        except KamadoError as e:
            self.error = e
        except OSError as e:
            if not self.cancel.is_set():
                reason = "ffmpeg stopped reading" if e.errno == errno.EPIPE else e.strerror
                self.error = LiveStopped(f"{self.target.describe()}: feeding ffmpeg: {reason}")
        finally:
            if copy is not None:
                copy.close()
            source.close()

    def _follow(self, source: _Source, sink: Callable[[Chunk], object]) -> None:
        position, target = self.position, self.target
        settings = self.settings
        stable = 0  # looks in a row, after the finish hook, that found no new bytes
        while True:
            if self.cancel.is_set():
                raise LiveStopped("stopped")
            st = source.stat(self.cancel)
            now = time.time()
            position.grew(st.size, now)
            if st.size < position.fed:
                raise LiveStopped(
                    f"{target.describe()}: the recording shrank from {position.fed} to "
                    f"{st.size} bytes (truncated or replaced)"
                )
            if source.identity is None and st.size >= IDENTITY_BYTES:
                data = source.first_bytes(IDENTITY_BYTES, self.cancel)
                source.identity = hashlib.sha256(data).hexdigest()
            if st.size > position.fed:
                source.read(sink, position.fed, st.size, self.cancel)
                stable = 0
                continue
            phase = self.phase()
            _check_phase(phase, target)
            if phase is Phase.FINISHED:
                stable += 1
                if stable >= 2:  # two looks a poll apart: the recorder has stopped writing
                    source.check_identity()
                    return
            elif self.deadline is not None and now > self.deadline:
                raise LiveStopped(
                    f"{target.describe()}: no finish hook by the programme's end plus "
                    f"live.finish_margin ({settings.finish_margin:g} s)"
                )
            if self.cancel.wait(settings.poll):
                raise LiveStopped("stopped")
