"""The spool's files on disk: durable writes, directory fsync and the two locks.

Kept free of the job models so a recorder hook can spool a request at the cost of a
few system calls. A file is written to a temporary name, fsync'd, renamed into place
and the directory fsync'd, so it is either wholly there or not at all, even across a
power cut. Names start with a nanosecond timestamp, so sorting them is arrival order.
Files and directories follow :mod:`scheduler.spool.access` (shared with the recorder's
user through a group, whatever the caller's umask).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from scheduler.errors import SpoolAccessError, SpoolError
from scheduler.spool import access as spool_access

SUFFIX = ".json"
DRAIN_LOCK = ".drain.lock"
SERVICE_LOCK = ".service.lock"


SETUP_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def spool_error(what: str, path: Path, error: OSError) -> SpoolError:
    """Our error for a failed system call on the spool: a set-up problem (exit 2) or not."""
    kind = SpoolAccessError if error.errno in SETUP_ERRNOS else SpoolError
    return kind(f"spool: {what}: {spool_access.permission_fix(path, error)}", path=path)


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (renames, unlinks) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure(directory: Path) -> None:
    """Create the spool directory if it is not there (shared when its parent is)."""
    try:
        spool_access.make_dir(directory)
    except OSError as e:
        raise spool_error("cannot create it", directory, e) from e


def entry_name(label: str) -> str:
    """A new entry's file name: arrival time first, so names sort in arrival order."""
    return f"{time.time_ns():020d}-{label}{SUFFIX}"


def write_entry(directory: Path, label: str, data: bytes) -> Path:
    """Write one entry durably; returns its file."""
    ensure(directory)
    final = directory / entry_name(label)
    temp = directory / f".tmp-{os.urandom(6).hex()}"
    try:
        fd = spool_access.open_file(temp, os.O_WRONLY, exclusive=True)
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
        raise spool_error("cannot write a submission", directory, e) from e
    return final


def try_lock(directory: Path, name: str, *, blocking: bool = False) -> int | None:
    """Take an exclusive lock file in the spool; its fd (close it to release), or None when
    another process holds it. An fd inherited by a child keeps the lock for the child."""
    ensure(directory)
    path = directory / name
    try:
        fd = spool_access.open_file(path, os.O_RDONLY)
    except OSError as e:
        raise spool_error("cannot open its lock", path, e) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def holds_lock(fd: int, directory: Path, name: str) -> bool:
    """True when ``fd`` is this spool's lock file and holds its lock (an inherited one)."""
    try:
        st, lock_st = os.fstat(fd), (directory / name).stat()
        if (st.st_dev, st.st_ino) != (lock_st.st_dev, lock_st.st_ino):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: a no-op
    except OSError:
        return False
    return True


@contextlib.contextmanager
def lock(directory: Path, name: str, *, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive lock file in the spool; yields False when another process has it."""
    fd = try_lock(directory, name, blocking=blocking)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def share_locks(directory: Path) -> None:
    """Give this spool's lock files the shared mode (an older kamado wrote them 0600)."""
    for name in (DRAIN_LOCK, SERVICE_LOCK):
        try:
            os.close(spool_access.open_file(directory / name, os.O_RDONLY))
        except OSError as e:
            raise spool_error("cannot open its lock", directory / name, e) from e


def service_running(directory: Path) -> bool:
    """True while a scheduler service on this machine holds the spool's service lock."""
    if not (directory / SERVICE_LOCK).exists():
        return False
    fd = try_lock(directory, SERVICE_LOCK)
    if fd is None:
        return True
    os.close(fd)
    return False
