"""The Files interface: what staging needs from a location, and the values that cross it.

Three implementations stand beside it: local paths (:mod:`worker.staging.local`), SFTP
over OpenSSH's client (:mod:`worker.staging.sftp.openssh_files`) and over paramiko
(:mod:`worker.staging.sftp.paramiko_files`); one test suite runs over all three
(tests/integration/staging/test_files_contract.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Chunk",
    "DiskSpace",
    "Files",
    "ProgressCallback",
    "PushSource",
    "RemoteStat",
    "Sink",
    "SinkError",
    "TransferProgress",
]


@dataclass(frozen=True)
class RemoteStat:
    """Size, modification time and type of a remote path."""

    size: int
    mtime: int
    is_dir: bool


@dataclass(frozen=True)
class DiskSpace:
    """Free and total bytes of the file system holding a remote path."""

    free: int
    total: int


ProgressCallback = Callable[[int, int], object]


class PushSource(Protocol):
    """What a push reads from: a local file (or a reader wrapping one), from an offset."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def read(self, size: int = -1, /) -> bytes: ...
    def readinto(self, view: memoryview, /) -> int: ...


# Pulled data may arrive as a bytearray: the buffer the pipe was read into, not copied.
Chunk = bytes | bytearray
Sink = Callable[[Chunk], object]


@dataclass
class TransferProgress:
    """Position up to which bytes are delivered or acknowledged, contiguously."""

    done: int = 0
    total: int = 0
    callback: ProgressCallback | None = None

    def advance(self, count: int) -> None:
        """Count ``count`` more bytes done and tell the callback (done, total)."""
        self.done += count
        if self.callback is not None:
            self.callback(self.done, self.total)


class SinkError(Exception):
    """Carries an error of the caller's sink (a full scratch disk, a closed pipe) out of a
    session's ``read_to`` unconverted: it is not the location's fault."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Files(Protocol):
    """What staging needs from a location: an SFTP session or the local file system."""

    name: str

    def stat(self, path: str) -> RemoteStat: ...
    def listdir(self, path: str) -> list[str]: ...
    def remove(self, path: str) -> None: ...
    def rename(self, old: str, new: str, *, replace: bool = True) -> None: ...
    def realpath(self, path: str) -> str: ...
    def lexists(self, path: str) -> bool: ...
    def disk_space(self, path: str) -> DiskSpace | None: ...
    def read_to(
        self,
        path: str,
        sink: Sink,
        progress: TransferProgress,
        *,
        offset: int,
        size: int,
        cancel: threading.Event | None = None,
    ) -> None: ...
    def write_from(
        self, source: PushSource, path: str, progress: TransferProgress, *, offset: int, size: int
    ) -> None: ...
    def close(self) -> None: ...
