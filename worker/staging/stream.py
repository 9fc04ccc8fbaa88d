"""Streaming a source into ffmpeg through a FIFO while it downloads (no scratch copy)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worker.settings.staging import StagingSettings
from worker.staging.connection import connect
from worker.staging.errors import LocationError, RemoteNotFoundError, TransferError
from worker.staging.files import Chunk, Files, ProgressCallback, RemoteStat, TransferProgress
from worker.staging.local import LocalFiles
from worker.staging.resumable import read_resumable
from worker.staging.scratch import scratch_path
from worker.staging.sink import BackgroundSink
from worker.staging.source import StagedSource
from worker.staging.uri import Target

PIPE_BUFFER = 1024 * 1024


def open_fifo_writer(fifo: Path, cancel: threading.Event) -> int | None:
    """Open ``fifo`` for writing once a reader (ffmpeg) has opened it; None if ``cancel``
    is set first (a blocking open could hang for ever)."""
    while not cancel.is_set():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            cancel.wait(0.02)
            continue
        os.set_blocking(fd, True)
        return fd
    return None


class Stream:
    """A thread that writes one remote file into a FIFO, reconnecting after drops."""

    def __init__(
        self,
        settings: StagingSettings,
        target: Target,
        fifo: Path,
        files: Files,
        first: RemoteStat,
    ) -> None:
        self.settings = settings
        self.target = target
        self.fifo = fifo
        self.progress = TransferProgress()
        self.hasher = hashlib.sha256()
        self.error: LocationError | None = None
        self.cancel = threading.Event()
        self._opened = threading.Event()
        self._files: Files | None = files
        self._first = first
        self._thread = threading.Thread(target=self._run, name="kamado-stream", daemon=True)

    def start(self) -> Stream:
        """Start writing; the thread blocks until a reader opens the FIFO."""
        self._thread.start()
        return self

    def _run(self) -> None:
        files, self._files = self._files, None
        fd: int | None = None
        try:
            fd = open_fifo_writer(self.fifo, self.cancel)
        except OSError as e:
            self.error = TransferError(f"cannot open pipe {str(self.fifo)!r}: {e.strerror}")
        if fd is None or self.error is not None:
            if files is not None:
                files.close()
            return
        self._opened.set()
        try:
            with os.fdopen(fd, "wb", buffering=PIPE_BUFFER) as out:

                def write(data: Chunk) -> None:
                    out.write(data)
                    self.hasher.update(data)

                with BackgroundSink(write) as sink:
                    read_resumable(
                        self.settings,
                        self.target,
                        sink,
                        self.progress,
                        files=files,
                        first=self._first,
                        cancel=self.cancel,
                    )
        except LocationError as e:
            self.error = e
        except OSError as e:  # the reader went away (EPIPE) or the pipe broke
            if not self.cancel.is_set():
                reason = "ffmpeg stopped reading" if e.errno == errno.EPIPE else e.strerror
                self.error = TransferError(
                    f"streaming {self.target.describe()!r}: {reason} after "
                    f"{self.progress.done} bytes",
                    location=self.target.location,
                    path=self.target.path,
                )

    def finish(self, timeout: float | None = None) -> str:
        """Wait for the download to end; its sha256, or raise its error."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TransferError(
                f"streaming {self.target.describe()!r} still running after {timeout}s",
                location=self.target.location,
                path=self.target.path,
            )
        if self.error is not None:
            raise self.error
        return self.hasher.hexdigest()

    def stop(self) -> None:
        """Stop the download (a writer still waiting for a reader gives up)."""
        self.cancel.set()
        self._thread.join(30)


@contextmanager
def streamed(
    settings: StagingSettings,
    target: Target,
    scratch: Path,
    on_progress: ProgressCallback | None = None,
) -> Iterator[StagedSource]:
    """A FIFO in scratch that an SFTP source is written into while ffmpeg reads it."""
    scratch_files = LocalFiles("scratch")
    fifo = scratch_path(scratch, target.uri).with_suffix(".fifo")
    files = connect(settings, target.location)
    try:
        first = files.stat(target.path)
        if first.is_dir:
            raise RemoteNotFoundError(
                f"source {target.describe()!r} is a directory", location=target.location
            )
        with scratch_files.errors("create pipe", str(fifo)):
            scratch.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                fifo.unlink()
            os.mkfifo(fifo, 0o600)
    except BaseException:
        files.close()
        raise
    stream = Stream(settings, target, fifo, files, first)
    stream.progress = TransferProgress(0, first.size, on_progress)
    stream.start()
    try:
        yield StagedSource(target.uri, fifo, first.size, streaming=True, stream=stream)
    finally:
        stream.stop()
        with contextlib.suppress(FileNotFoundError):
            fifo.unlink()
