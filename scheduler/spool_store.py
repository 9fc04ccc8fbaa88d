"""The spool's files on disk: durable writes, directory fsync and the two locks.

Kept free of the job models so a recorder hook can spool a request at the cost of a
few system calls. A file is written to a temporary name, fsync'd, renamed into place
and the directory fsync'd, so it is either wholly there or not at all, even across a
power cut. Names start with a nanosecond timestamp, so sorting them is arrival order.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from scheduler.errors import SpoolError

SUFFIX = ".json"
DRAIN_LOCK = ".drain.lock"
SERVICE_LOCK = ".service.lock"


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (renames, unlinks) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure(directory: Path) -> None:
    """Create the spool directory (private to its user) if it is not there."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise SpoolError(
            f"spool {directory}: cannot create it ({e.strerror or e})", path=directory
        ) from e


def entry_name(label: str) -> str:
    """A new entry's file name: arrival time first, so names sort in arrival order."""
    return f"{time.time_ns():020d}-{label}{SUFFIX}"


def write_entry(directory: Path, label: str, data: bytes) -> Path:
    """Write one entry durably; returns its file."""
    ensure(directory)
    final = directory / entry_name(label)
    temp = directory / f".tmp-{os.urandom(6).hex()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.rename(final)
        fsync_dir(directory)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise SpoolError(
            f"spool {directory}: cannot write a submission ({e.strerror or e})", path=directory
        ) from e
    return final


@contextlib.contextmanager
def lock(directory: Path, name: str, *, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive lock file in the spool; yields False when another process has it."""
    ensure(directory)
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def service_running(directory: Path) -> bool:
    """True while a scheduler service on this machine holds the spool's service lock."""
    if not (directory / SERVICE_LOCK).exists():
        return False
    with lock(directory, SERVICE_LOCK, blocking=False) as got:
        return not got
