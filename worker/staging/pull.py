"""Pulling an SFTP source to scratch with its sha256, resuming a partial copy."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from worker.settings.staging import StagingSettings
from worker.staging.connection import connect
from worker.staging.errors import NoSpaceError, RemoteNotFoundError, TransferError
from worker.staging.files import Chunk, ProgressCallback, RemoteStat, TransferProgress
from worker.staging.local import LocalFiles, fsync_dir
from worker.staging.resumable import read_resumable
from worker.staging.scratch import MIB, check_space
from worker.staging.sink import BackgroundSink
from worker.staging.source import StagedSource, local_source
from worker.staging.uri import resolve

WRITEBACK = 32 * MIB


def discard(dest: Path) -> None:
    """Remove a pulled source and its partial and resume files."""
    for path in (dest, _part(dest), _meta(dest)):
        with suppress(FileNotFoundError):
            path.unlink()


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _meta(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


class _HashingWriter:
    """Writes to a file and hashes what was written, so both always agree.

    Every ``WRITEBACK`` bytes it asks the kernel to start writing them to disk, so the
    fsync before the rename finds little left: the disk works while the network does.
    """

    def __init__(self, out: BinaryIO, at: int = 0) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.written = self.kicked = at

    def write(self, data: Chunk) -> None:
        # An unbuffered write may be short (a nearly full disk): write the rest, so the
        # next call raises ENOSPC instead of the file silently missing those bytes.
        view = memoryview(data)
        while view:
            written = self.out.write(view)
            view = view[written or 0 :]
        self.hasher.update(data)
        self.written += len(data)
        if self.written - self.kicked >= WRITEBACK:
            # DONTNEED starts write-back of dirty pages and keeps them cached until clean.
            with suppress(OSError, AttributeError):
                os.posix_fadvise(
                    self.out.fileno(),
                    self.kicked,
                    self.written - self.kicked,
                    os.POSIX_FADV_DONTNEED,
                )
            self.kicked = self.written

    def reset(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.hasher = hashlib.sha256()
        self.written = self.kicked = 0


def pull(
    settings: StagingSettings,
    uri: str,
    dest: Path,
    *,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> StagedSource:
    """Copy an SFTP source to ``dest`` with its sha256, resuming a partial copy of it."""
    target = resolve(settings, uri)
    if target.kind == "local":
        return local_source(target)
    scratch = LocalFiles("scratch")
    with scratch.errors("create", str(dest.parent)):
        dest.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(settings, target.location)
    try:
        first = conn.stat(target.path)
    except BaseException:
        conn.close()
        raise
    if first.is_dir:
        conn.close()
        raise RemoteNotFoundError(
            f"source {target.describe()!r} is a directory", location=target.location
        )
    identity = {"uri": uri, "size": first.size, "mtime": first.mtime}
    resumable = _meta(dest).is_file() and _read_meta(_meta(dest)) == identity
    have = _part(dest).stat().st_size if resumable and _part(dest).is_file() else 0
    have = have if have <= first.size else 0
    try:
        check_space(settings, dest.parent, first.size - have)
    except NoSpaceError:
        conn.close()
        raise
    with scratch.errors("write", str(_part(dest))):
        _meta(dest).write_text(json.dumps(identity))
        # Unbuffered: reads arrive in blocks of about 256 KiB and a writer thread takes them.
        with _part(dest).open("r+b" if have else "wb", buffering=0) as out:
            writer = _HashingWriter(out, have)
            if have:
                _rehash(out, writer, have)
            progress = TransferProgress(have, first.size, on_progress)
            with BackgroundSink(writer.write) as sink:

                def restart(st: RemoteStat) -> None:
                    sink.drain()
                    writer.reset()
                    changed = {**identity, "size": st.size, "mtime": st.mtime}
                    _meta(dest).write_text(json.dumps(changed))

                st = read_resumable(
                    settings,
                    target,
                    sink,
                    progress,
                    files=conn,
                    first=first,
                    on_changed=restart,
                    cancel=cancel,
                )
            if cancel is not None and cancel.is_set():
                raise TransferError(f"pull of {target.describe()!r} cancelled", path=target.path)
            out.flush()
            os.fsync(out.fileno())
        _part(dest).replace(dest)
        _meta(dest).unlink()
        fsync_dir(dest.parent)
    return StagedSource(uri, dest, st.size, writer.hasher.hexdigest(), copied=True)


def _read_meta(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _rehash(out: BinaryIO, writer: _HashingWriter, have: int) -> None:
    out.seek(0)
    left = have
    while left:
        data = out.read(min(MIB, left))
        if not data:
            break
        writer.hasher.update(data)
        left -= len(data)
    out.seek(have)
    out.truncate()
