"""SFTP over OpenSSH's own client: ``ssh -s sftp`` carries the bytes, Python speaks SFTP.

OpenSSH does the encryption and the SSH packets in C, so on a small machine the data
path no longer competes with sshd for the cores the way paramiko's per-packet Python
work does; Python only frames 255 KiB SFTP requests. The child is started through
:mod:`worker.process` (argv list, own process group, killed with the session). Every
failure becomes a :mod:`worker.staging.errors` error here, with the same messages as
the paramiko transport (:mod:`worker.staging.sftp.paramiko_files`), which stays for
machines without ``ssh``.
A key with a passphrase goes through here too: ssh asks it of SSH_ASKPASS (ssh_command).
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from worker.errors import ProcessError
from worker.process import Piped
from worker.settings.staging import SftpLocation
from worker.staging.errors import (
    AuthenticationError,
    HostKeyError,
    LocationError,
    TransferError,
    UnreachableError,
)
from worker.staging.files import (
    DiskSpace,
    PushSource,
    RemoteStat,
    Sink,
    SinkError,
    TransferProgress,
)
from worker.staging.sftp import wire as w
from worker.staging.sftp.common import (
    DEFAULT_REQUEST,
    SessionBase,
    clamp_request,
    known_hosts_name,
    not_sftp_reason,
)
from worker.staging.sftp.ssh_command import diagnose, sftp_argv, sftp_env

MIB = 1024 * 1024
# The pushed file is fsynced every SYNC_EVERY bytes, pipelined with the writes, so the
# fsync before the rename finds little left to flush (measured per 512 MiB on loopback:
# 0.2 s at the end without it, 0.015 s with it).
SYNC_EVERY = 32 * MIB
# Bytes of writes in flight, at most: OpenSSH's own sftp keeps 64 x 32 KiB. More (16 x
# 255 KiB) outruns the 2 MiB SSH channel window and ssh then waits on window updates: a
# 40 MiB push took 0.38 s with 16 requests in flight against 0.23 s with 4.
WRITE_AHEAD = 1 * MIB


class OpenSshSession(SessionBase):
    """One ``ssh -s sftp`` child and the SFTP session spoken over its pipes."""

    def __init__(
        self, name: str, location: SftpLocation, child: Piped, wire: w.Wire, *, max_requests: int
    ) -> None:
        self.name = name
        self.location = location
        self.child = child
        self.wire = wire
        self.max_requests = max_requests
        self.read_size, self.write_size = self._request_sizes()
        self.sync_every = SYNC_EVERY if "fsync@openssh.com" in wire.extensions else 0

    @classmethod
    def connect(
        cls, name: str, location: SftpLocation, *, ssh: str, max_requests: int = 16
    ) -> OpenSshSession:
        """Start ssh, check the host key, authenticate and open SFTP; raise a LocationError."""
        return cls.begin(name, location, ssh=ssh, max_requests=max_requests).finish()

    @classmethod
    def begin(
        cls, name: str, location: SftpLocation, *, ssh: str, max_requests: int = 16
    ) -> Opening:
        """Start ssh and ask for SFTP without waiting: the handshake runs in ssh meanwhile."""
        from worker.staging.sftp.hostkey import preflight  # paramiko: only for SFTP

        preflight(name, location)
        try:
            child = Piped(sftp_argv(ssh, location), env=sftp_env(location))
        except ProcessError as e:
            raise UnreachableError(f"location {name!r}: {e}", location=name) from e
        wire = w.Wire(child.stdout.fileno(), child.stdin.fileno(), location.io_timeout)
        try:
            wire.greet()
        except w.LinkLost:
            pass  # ssh is gone already: finish() reads why
        except BaseException:
            child.close(grace=0)
            raise
        return Opening(cls, name, location, child, wire, max_requests)

    def close(self) -> None:
        """End the SFTP session and ssh (quietly: the link may be gone)."""
        self.child.close(grace=1.0)

    @contextmanager
    def errors(self, action: str, path: str) -> Iterator[None]:
        """Convert protocol and link failures raised inside into LocationErrors."""
        try:
            yield
        except (LocationError, SinkError):
            raise
        except (w.LinkLost, w.StatusError, OSError) as e:
            self._raise(e, action, path)

    def _raise(self, e: Exception, action: str, path: str) -> NoReturn:
        where = f"location {self.name!r}: {action} {path!r}"
        if isinstance(e, w.LinkLost | OSError) and not isinstance(e, w.StatusError):
            code = self.child.wait(2)
            said = diagnose(self.child.stderr_tail, code).reason if code is not None else ""
            raise UnreachableError(
                f"{where}: connection lost ({said or e})", location=self.name, path=path
            ) from e
        code = getattr(e, "errno", None)
        self.raise_for_code(e, where, path, code)

    def stat(self, path: str) -> RemoteStat:
        """Size, mtime and type of a remote path."""
        with self.errors("stat", path):
            attrs = w.Reader(w.expect(self.wire.call(w.STAT, w.string(path)), w.ATTRS)).attrs()
        mode = attrs.mode or 0
        return RemoteStat(attrs.size or 0, attrs.mtime or 0, mode & 0o170000 == 0o40000)

    def listdir(self, path: str) -> list[str]:
        """Names in a remote directory."""
        names: list[str] = []
        with self.errors("list", path):
            handle = w.expect(self.wire.call(w.OPENDIR, w.string(path)), w.HANDLE)
            try:
                while True:
                    kind, body = self.wire.call(w.READDIR, handle)
                    if kind == w.STATUS and w.status(body)[0] == w.FX_EOF:
                        break
                    reader = w.Reader(w.expect((kind, body), w.NAME))
                    for _ in range(reader.u32()):
                        name = reader.text()
                        reader.bytes()  # the long (ls -l) form
                        reader.attrs()
                        if name not in (".", ".."):
                            names.append(name)
            finally:
                self._close_handle(handle)
        return names

    def remove(self, path: str) -> None:
        """Remove a remote file."""
        with self.errors("remove", path):
            w.ok(self.wire.call(w.REMOVE, w.string(path)))

    def realpath(self, path: str) -> str:
        """The server's real path of ``path``: symlinks and ``..`` resolved (the last part may
        not exist)."""
        with self.errors("resolve", path):
            reader = w.Reader(w.expect(self.wire.call(w.REALPATH, w.string(path)), w.NAME))
            if reader.u32() < 1:
                raise w.LinkLost("the server answered REALPATH with no name")
            return reader.text()

    def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        """Rename atomically: replacing ``new`` (posix-rename@openssh.com), or with
        ``replace=False`` only if nothing is there (SFTP's RENAME links, then unlinks)."""
        with self.errors("rename to " + repr(new), old):
            if not replace:
                try:
                    w.ok(self.wire.call(w.RENAME, w.string(old), w.string(new)))
                except w.StatusError as e:
                    if e.code == w.FX_FAILURE and self.lexists(new):
                        raise self.exists_error(old, new) from e
                    raise
                return
            if "posix-rename@openssh.com" not in self.wire.extensions:
                raise w.StatusError(w.FX_OP_UNSUPPORTED, "the server lacks posix-rename")
            request = w.string("posix-rename@openssh.com")
            w.ok(self.wire.call(w.EXTENDED, request, w.string(old), w.string(new)))

    def lexists(self, path: str) -> bool:
        """True when anything, a dangling symlink too, is at ``path``."""
        with self.errors("lstat", path):
            kind, _body = self.wire.call(w.LSTAT, w.string(path))
        return kind == w.ATTRS

    def disk_space(self, path: str) -> DiskSpace | None:
        """Free space where ``path`` lives (statvfs@openssh.com), or None if unsupported."""
        if "statvfs@openssh.com" not in self.wire.extensions:
            return None
        with self.errors("statvfs", path):
            request = w.string("statvfs@openssh.com")
            try:
                body = w.expect(
                    self.wire.call(w.EXTENDED, request, w.string(path)), w.EXTENDED_REPLY
                )
            except w.StatusError as e:
                if e.errno in (errno.ENOENT, errno.EACCES):
                    raise
                return None
        reader = w.Reader(body)
        _bsize, frsize, blocks, _bfree, bavail = (reader.u64() for _ in range(5))
        return DiskSpace(free=bavail * frsize, total=blocks * frsize)

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
        """Read ``[offset, size)`` of a remote file into ``sink`` in order, pipelined."""
        with self.errors("read", path):
            handle = self._open(path, w.FXF_READ)
            try:
                self._read_loop(handle, path, sink, progress, offset, size, cancel)
            finally:
                self._close_handle(handle)

    def _read_loop(
        self,
        handle: bytes,
        path: str,
        sink: Sink,
        progress: TransferProgress,
        offset: int,
        size: int,
        cancel: threading.Event | None,
    ) -> None:
        wire = self.wire
        pending: deque[tuple[int, int, int]] = deque()
        position = offset
        while pending or position < size:
            if cancel is not None and cancel.is_set():
                return
            while len(pending) < self.max_requests and position < size:
                length = min(self.read_size, size - position)
                rid = wire.send(w.READ, handle, w.u64(position), w.u32(length))
                pending.append((rid, position, length))
                position += length
            rid, start, length = pending.popleft()
            kind, data = wire.answer(rid)
            if kind != w.DATA:
                if kind == w.STATUS and w.status(data)[0] == w.FX_EOF:
                    raise TransferError(
                        f"location {self.name!r}: {path!r} ended at {start} bytes, expected {size}",
                        location=self.name,
                        path=path,
                    )
                w.expect((kind, data), w.DATA)
            try:
                sink(data)
            except Exception as e:
                raise SinkError(e) from e
            progress.advance(len(data))
            if len(data) < length:  # a short read: ask for the rest first
                rest = start + len(data), length - len(data)
                rid = wire.send(w.READ, handle, w.u64(rest[0]), w.u32(rest[1]))
                pending.appendleft((rid, rest[0], rest[1]))

    def write_from(
        self, source: PushSource, path: str, progress: TransferProgress, *, offset: int, size: int
    ) -> None:
        """Write ``source[offset:size]`` to ``path`` (created or cut to ``offset``), then fsync."""
        with self.errors("write", path):
            flags = w.FXF_WRITE | w.FXF_CREAT | (0 if offset else w.FXF_TRUNC)
            handle = self._open(path, flags)
            try:
                if offset:
                    cut = w.u32(w.ATTR_SIZE) + w.u64(offset)
                    w.ok(self.wire.call(w.FSETSTAT, handle, cut))
                source.seek(offset)
                try:
                    self._write_loop(handle, source, path, progress, offset, size)
                    self._fsync(handle)
                except w.StatusError as e:
                    if e.errno is None:
                        needed = size - offset - progress.done
                        space = self.disk_space(path)
                        if space is not None and space.free < needed:
                            raise self.space_error(path, needed) from e
                    raise
            finally:
                self._close_handle(handle)

    def _write_loop(
        self,
        handle: bytes,
        source: PushSource,
        path: str,
        progress: TransferProgress,
        offset: int,
        size: int,
    ) -> None:
        wire = self.wire
        # Each request is written to the pipe whole before the next is read (``flush``),
        # so one buffer serves them all: no 255 KiB allocation and copy per request.
        buffer = bytearray(self.write_size)
        view = memoryview(buffer)
        ahead = max(1, min(self.max_requests, WRITE_AHEAD // self.write_size))
        pending: deque[tuple[int, int]] = deque()
        position = synced = offset
        while pending or position < size:
            while len(pending) < ahead and position < size:
                got = source.readinto(view[: min(self.write_size, size - position)])
                if not got:
                    raise TransferError(
                        f"local file for {path!r} shrank to {position} bytes "
                        f"while being sent (expected {size})",
                        location=self.name,
                        path=path,
                    )
                rid = wire.send(w.WRITE, handle, w.u64(position), w.u32(got), view[:got])
                pending.append((rid, got))
                position += got
                if self.sync_every and position - synced >= self.sync_every and position < size:
                    pending.append((self._send_fsync(handle), 0))
                    synced = position
                wire.flush()  # each request leaves at once: ssh sends while we read
            rid, length = pending.popleft()
            w.ok(wire.answer(rid))
            progress.advance(length)

    def _open(self, path: str, flags: int) -> bytes:
        # A handle stays in its wire form (an SFTP string): requests carry it as it came.
        no_attrs = w.u32(0)
        return w.expect(self.wire.call(w.OPEN, w.string(path), w.u32(flags), no_attrs), w.HANDLE)

    def _close_handle(self, handle: bytes) -> None:
        # When the link is already gone the server has closed the handle with it.
        with contextlib.suppress(w.LinkLost, w.StatusError, OSError):
            self.wire.call(w.CLOSE, handle)

    def _send_fsync(self, handle: bytes) -> int:
        return self.wire.send(w.EXTENDED, w.string("fsync@openssh.com"), handle)

    def _fsync(self, handle: bytes) -> None:
        if "fsync@openssh.com" in self.wire.extensions:
            w.ok(self.wire.call(w.EXTENDED, w.string("fsync@openssh.com"), handle))

    def _request_sizes(self) -> tuple[int, int]:
        """Read and write request sizes the server accepts (limits@openssh.com)."""
        if "limits@openssh.com" not in self.wire.extensions:
            return DEFAULT_REQUEST, DEFAULT_REQUEST
        with self.errors("ask limits of", self.location.root):
            body = w.expect(
                self.wire.call(w.EXTENDED, w.string("limits@openssh.com")), w.EXTENDED_REPLY
            )
        reader = w.Reader(body)
        _packet, read, write = reader.u64(), reader.u64(), reader.u64()
        return clamp_request(read), clamp_request(write)


class Opening:
    """An ``ssh -s sftp`` child started by :meth:`OpenSshSession.begin`, not yet answered.

    ssh exchanges keys and authenticates in its own process, so the caller can work
    meanwhile (kamado encodes) and ``finish`` then finds the session ready.
    """

    def __init__(
        self,
        cls: type[OpenSshSession],
        name: str,
        location: SftpLocation,
        child: Piped,
        wire: w.Wire,
        max_requests: int,
    ) -> None:
        self._cls = cls
        self.name = name
        self.location = location
        self.child = child
        self.wire = wire
        self.max_requests = max_requests

    def finish(self) -> OpenSshSession:
        """Wait for the SFTP session; raise the LocationError ssh's failure describes."""
        child, location = self.child, self.location
        try:
            self.wire.hello(location.connect_timeout + location.io_timeout)
            return self._cls(self.name, location, child, self.wire, max_requests=self.max_requests)
        except w.NotSftp as e:
            child.close(grace=0)
            where = f"location {self.name!r} ({location.user}@{location.host}:{location.port})"
            raise UnreachableError(
                f"{where}: no SFTP session: {not_sftp_reason(location.user, e.sent)}",
                location=self.name,
            ) from e
        except w.LinkLost as e:
            code = child.wait(5)
            tail = child.stderr_tail
            child.close(grace=0)
            _refused(self.name, location, tail, code, e)
        except BaseException:
            child.close(grace=0)
            raise

    def close(self) -> None:
        """Give up on the session (ssh is stopped)."""
        self.child.close(grace=0)


def _refused(
    name: str, location: SftpLocation, tail: str, code: int | None, error: Exception
) -> NoReturn:
    """Raise the LocationError that ssh's stderr describes (it ended before SFTP began)."""
    where = f"location {name!r} ({location.user}@{location.host}:{location.port})"
    found = diagnose(tail, code)
    reason = found.reason if tail else str(error)
    if found.failure in ("host key", "host key changed"):
        from worker.staging.sftp.hostkey import explain_host_key

        explain_host_key(name, location)  # paramiko names the fingerprint, when it sees one
        host = known_hosts_name(location.host, location.port)
        raise HostKeyError(
            f"location {name!r}: ssh refused the host key of {host} ({reason}); check "
            f"{str(location.known_hosts)!r} against the host's fingerprint",
            location=name,
            changed=found.failure == "host key changed",
        ) from error
    if found.failure == "auth":
        raise AuthenticationError(
            f"{where}: the host refused key {location.key_file} ({reason}); add "
            f"{location.key_file}.pub to ~{location.user}/.ssh/authorized_keys there",
            location=name,
        ) from error
    if found.failure == "subsystem":
        raise UnreachableError(
            f"{where}: SSH handshake failed: {reason}; check sshd on the host", location=name
        ) from error
    raise UnreachableError(
        f"{where}: cannot connect: {reason}; check the host is up, the port is right and sshd runs",
        location=name,
    ) from error
