"""Local paths (shared mounts, scratch) behind the same small interface as an SFTP session."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, Self

from worker.staging.errors import (
    AccessDeniedError,
    LocationError,
    NoSpaceError,
    OutputExistsError,
    RemoteNotFoundError,
    TransferError,
)
from worker.staging.files import (
    DiskSpace,
    PushSource,
    RemoteStat,
    Sink,
    SinkError,
    TransferProgress,
)

CHUNK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def file_sha256(path: Path) -> str:
    """The sha256 of a local file (a verified output, before it is pushed)."""
    files = LocalFiles()
    with files.errors("hash", str(path)), path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def free_bytes(path: Path) -> int:
    """Free bytes on the file system of ``path`` or its nearest existing parent."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


class LocalFiles:
    """Files on this machine, converting OSError into staging errors naming the path."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def close(self) -> None:
        """Nothing to close; present for the Files interface."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def errors(self, action: str, path: str) -> Iterator[None]:
        """Convert OSErrors raised inside into LocationErrors."""
        try:
            yield
        except (LocationError, SinkError):
            raise
        except OSError as e:
            self._raise(e, action, path)

    def _raise(self, e: OSError, action: str, path: str) -> NoReturn:
        where = f"{'location ' + repr(self.name) + ': ' if self.name else ''}{action} {path!r}"
        reason = e.strerror or str(e)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpaceError(
                f"{where}: no space left on device; free space there or move scratch_dir",
                location=self.name,
                path=path,
                free=free_bytes(Path(path)),
            ) from e
        if e.errno == errno.ENOENT:
            raise RemoteNotFoundError(
                f"{where}: no such file or directory", location=self.name, path=path
            ) from e
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise AccessDeniedError(
                f"{where}: {reason}; check owner, mode and mount options",
                location=self.name,
                path=path,
            ) from e
        raise TransferError(f"{where}: {reason}", location=self.name, path=path) from e

    def stat(self, path: str) -> RemoteStat:
        """Size, mtime and type of a local path."""
        with self.errors("stat", path):
            st = Path(path).stat()
        return RemoteStat(st.st_size, int(st.st_mtime), Path(path).is_dir())

    def listdir(self, path: str) -> list[str]:
        """Names in a local directory."""
        with self.errors("list", path):
            return [entry.name for entry in Path(path).iterdir()]

    def remove(self, path: str) -> None:
        """Remove a local file."""
        with self.errors("remove", path):
            Path(path).unlink()

    def realpath(self, path: str) -> str:
        """The real path of ``path``: symlinks and ``..`` resolved."""
        return os.path.realpath(path)

    def lexists(self, path: str) -> bool:
        """True when anything, a dangling symlink too, is at ``path``."""
        return os.path.lexists(path)

    def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        """Rename atomically and durably: replacing ``new``, or with ``replace=False`` only if
        nothing is there (a hard link, then the old name removed)."""
        with self.errors("rename to " + repr(new), old):
            if replace:
                Path(old).replace(new)
            else:
                try:
                    os.link(old, new, follow_symlinks=False)
                except FileExistsError as e:
                    raise OutputExistsError(
                        f"{new!r} appeared while the output was being delivered and kamado "
                        "does not replace it",
                        location=self.name,
                        path=new,
                    ) from e
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                        raise
                    # No hard links here (FAT, some network shares): check, then rename.
                    if Path(new).exists():
                        raise OutputExistsError(
                            f"{new!r} exists and kamado does not replace it",
                            location=self.name,
                            path=new,
                        ) from e
                    Path(old).rename(new)
                else:
                    Path(old).unlink()
        fsync_dir(Path(new).parent)

    def disk_space(self, path: str) -> DiskSpace | None:
        """Free and total bytes where ``path`` lives."""
        with self.errors("statvfs", path):
            usage = shutil.disk_usage(path)
        return DiskSpace(free=usage.free, total=usage.total)

    def read_to(
        self,
        path: str,
        sink: Sink,
        progress: TransferProgress,
        *,
        offset: int,
        size: int,
        cancel: threading.Event | None = None,
    ) -> None:
        """Read ``[offset, size)`` of a local file into ``sink``."""
        with self.errors("read", path), Path(path).open("rb") as fh:
            fh.seek(offset)
            position = offset
            while position < size and not (cancel is not None and cancel.is_set()):
                data = fh.read(min(CHUNK, size - position))
                if not data:
                    raise TransferError(
                        f"{path!r} ended at {position} bytes, expected {size}", path=path
                    )
                try:
                    sink(data)
                except Exception as e:
                    raise SinkError(e) from e
                progress.advance(len(data))
                position += len(data)

    def write_from(
        self, source: PushSource, path: str, progress: TransferProgress, *, offset: int, size: int
    ) -> None:
        """Write ``source[offset:size]`` to ``path`` (created or cut to ``offset``), then fsync."""
        with self.errors("write", path), Path(path).open("r+b" if offset else "wb") as out:
            out.truncate(offset)
            out.seek(offset)
            source.seek(offset)
            position = offset
            while position < size:
                data = source.read(min(CHUNK, size - position))
                if not data:
                    raise TransferError(
                        f"local file for {path!r} shrank to {position} bytes (expected {size})",
                        path=path,
                    )
                out.write(data)
                progress.advance(len(data))
                position += len(data)
            out.flush()
            os.fsync(out.fileno())
        fsync_dir(Path(path).parent)
