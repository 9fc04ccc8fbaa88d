"""Which file a local path really is: its resolved path plus device and inode.

Spellings lie: ``a/x/../show.ts``, a symlinked directory and a hard link can all name one
file. Every comparison the output contract makes goes through :func:`local_identity`, and
a source is looked at with ``stat`` only, so a FIFO or a device is refused without ever
being opened (opening a FIFO for reading blocks until a writer appears).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from worker.errors import SourceError

__all__ = ["kind_of"]


@dataclass(frozen=True)
class LocalIdentity:
    """A local place: its real path, and the (device, inode) of the file there, if any."""

    real: str
    dev: int | None = None
    ino: int | None = None

    @property
    def exists(self) -> bool:
        """True when a file is there."""
        return self.ino is not None

    def same_file(self, other: LocalIdentity) -> bool:
        """True when both name one file: one real path, or one inode on one device."""
        if self.real == other.real:
            return True
        return self.exists and (self.dev, self.ino) == (other.dev, other.ino)


def real_path(path: str) -> str:
    """The path with every symlink and ``..`` resolved (the last part may not exist)."""
    head, _, name = path.rstrip("/").rpartition("/")
    parent = os.path.realpath(head or "/")
    if name in ("", ".", ".."):
        return os.path.realpath(path)
    candidate = Path(parent, name)
    # A symlink as the last part is followed too: writing through it would write its target.
    return os.path.realpath(candidate) if os.path.islink(candidate) else str(candidate)  # noqa: PTH114 (never raises)


def local_identity(path: str) -> LocalIdentity:
    """The identity of a local path, whether or not a file is there yet."""
    real = real_path(path)
    try:
        st = Path(real).stat()
    except OSError:
        return LocalIdentity(real)
    return LocalIdentity(real, st.st_dev, st.st_ino)


def fingerprint(st: os.stat_result) -> str:
    """What marks one version of one file: device, inode, size and modification time."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def local_fingerprint(path: str) -> str | None:
    """The fingerprint of the file at ``path`` (symlinks followed), or None when none is there."""
    try:
        return fingerprint(Path(path).stat())
    except OSError:
        return None


KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file is, in words, for anything that is not a regular file."""
    return next((words for test, words in KINDS if test(mode)), "not a regular file")


def require_regular(path: str) -> os.stat_result:
    """The stat of a source that is a regular file; SourceError naming what it is otherwise.

    Never opens the file: a FIFO or a tape device would block or change state.
    """
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file", path=path) from None
    except OSError as e:
        raise SourceError(f"{path}: cannot read: {e.strerror or e}", path=path) from e
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"{path}: is {kind_of(st.st_mode)}, not a recording", path=path)
    return st
