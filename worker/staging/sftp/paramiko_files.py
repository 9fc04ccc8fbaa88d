"""The paramiko SFTP transport, where no ``ssh`` client is installed or a key path holds
characters ssh would expand (keys with a passphrase go through OpenSSH's askpass).

Connects with strict host-key checking against the location's known_hosts, then moves
data with pipelined SFTP requests of the size the server allows (``limits@openssh.com``),
a large channel window and AES-GCM first: paramiko's defaults (32 KiB requests, 2 MiB
window, one request at a time unless prefetching) reach about half of OpenSSH's speed.
paramiko's own prefetch buffers a whole file in memory when the reader is slow (a
streaming ffmpeg), so reads and writes here keep a bounded number of requests in flight.
With :mod:`worker.staging.sftp.hostkey`, the only modules that import paramiko. Every
paramiko or socket error becomes a :mod:`worker.staging.errors` error here.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import paramiko
from paramiko.sftp import CMD_DATA, CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_READ, CMD_WRITE, int64

from worker.settings.staging import SftpLocation
from worker.staging.errors import (
    AuthenticationError,
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
from worker.staging.sftp.common import DEFAULT_REQUEST, SessionBase, clamp_request, not_sftp_reason
from worker.staging.sftp.hostkey import check_host_key, load_key, load_known_hosts, prefer

MAX_PACKET = 256 * 1024 - 1024


class _Answers:
    """Collects answers to pipelined requests (paramiko calls ``_async_response``)."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.got[num] = (t, msg)


class SftpSession(SessionBase):
    """One authenticated SSH connection with an SFTP session to a configured location."""

    def __init__(
        self,
        name: str,
        location: SftpLocation,
        transport: paramiko.Transport,
        client: paramiko.SFTPClient,
        *,
        max_requests: int,
    ) -> None:
        self.name = name
        self.location = location
        self.transport = transport
        self.client = client
        self.max_requests = max_requests
        self.read_size, self.write_size = self._request_sizes()

    @classmethod
    def connect(
        cls, name: str, location: SftpLocation, *, window_mb: int = 64, max_requests: int = 16
    ) -> SftpSession:
        """Connect, check the host key, authenticate and open SFTP; raise a LocationError."""
        where = f"location {name!r} ({location.user}@{location.host}:{location.port})"
        pkey = load_key(name, location)
        known = load_known_hosts(name, location)
        try:
            sock = socket.create_connection(
                (location.host, location.port), timeout=location.connect_timeout
            )
        except OSError as e:
            raise UnreachableError(
                f"{where}: cannot connect: {e.strerror or e}; check the host is up, "
                "the port is right and sshd runs",
                location=name,
            ) from e
        window = window_mb * 1024 * 1024
        transport = paramiko.Transport(
            sock, default_window_size=window, default_max_packet_size=MAX_PACKET
        )
        try:
            prefer(transport, known)
            transport.start_client(timeout=location.connect_timeout)
            check_host_key(name, location, transport.get_remote_server_key(), known)
            transport.auth_publickey(location.user, pkey)
            transport.set_keepalive(30)
            client = paramiko.SFTPClient.from_transport(
                transport, window_size=window, max_packet_size=MAX_PACKET
            )
            if client is None:
                raise paramiko.SSHException("the host did not start the sftp subsystem")
            client.get_channel().settimeout(location.io_timeout)  # type: ignore[union-attr]
        except LocationError:
            transport.close()
            raise
        except paramiko.SFTPError as e:
            # The first bytes were no SFTP greeting: ask again on a fresh channel and read them.
            sent = _first_bytes(transport)
            transport.close()
            raise UnreachableError(
                f"{where}: no SFTP session: {not_sftp_reason(location.user, sent)}",
                location=name,
            ) from e
        except paramiko.AuthenticationException as e:
            transport.close()
            raise AuthenticationError(
                f"{where}: the host refused key {location.key_file} ({e}); add "
                f"{location.key_file}.pub to ~{location.user}/.ssh/authorized_keys there",
                location=name,
            ) from e
        except (paramiko.SSHException, OSError, EOFError) as e:
            # A shell such as nologin may print and close the channel before our SFTP
            # version packet goes out ("Socket is closed"): after a login, read what it says.
            sent = _first_bytes(transport) if transport.is_authenticated() else b""
            transport.close()
            if sent:
                raise UnreachableError(
                    f"{where}: no SFTP session: {not_sftp_reason(location.user, sent)}",
                    location=name,
                ) from e
            raise UnreachableError(
                f"{where}: SSH handshake failed: {e}; check sshd on the host", location=name
            ) from e
        return cls(name, location, transport, client, max_requests=max_requests)

    def close(self) -> None:
        """Close the SFTP session and the connection (quietly: the link may be gone)."""
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.transport.close()

    @contextmanager
    def errors(self, action: str, path: str) -> Iterator[None]:
        """Convert paramiko and socket errors raised inside into LocationErrors."""
        try:
            yield
        except (LocationError, SinkError):
            raise
        except Exception as e:  # every paramiko/socket failure type ends here
            self._raise(e, action, path)

    def _raise(self, e: Exception, action: str, path: str) -> NoReturn:
        where = f"location {self.name!r}: {action} {path!r}"
        code = getattr(e, "errno", None)
        # paramiko raises EOFError when a send finds the socket dead.
        lost = (paramiko.SSHException, socket.timeout, ConnectionError, EOFError)
        if isinstance(e, lost) or not self.transport.is_active():
            reason = str(e) or type(e).__name__
            raise UnreachableError(
                f"{where}: connection lost ({reason})", location=self.name, path=path
            ) from e
        self.raise_for_code(e, where, path, code)

    def stat(self, path: str) -> RemoteStat:
        """Size, mtime and type of a remote path."""
        with self.errors("stat", path):
            attrs = self.client.stat(path)
        mode = attrs.st_mode or 0
        return RemoteStat(attrs.st_size or 0, int(attrs.st_mtime or 0), mode & 0o170000 == 0o40000)

    def listdir(self, path: str) -> list[str]:
        """Names in a remote directory."""
        with self.errors("list", path):
            return self.client.listdir(path)

    def remove(self, path: str) -> None:
        """Remove a remote file."""
        with self.errors("remove", path):
            self.client.remove(path)

    def realpath(self, path: str) -> str:
        """The server's real path of ``path``: symlinks and ``..`` resolved (the last part may
        not exist)."""
        with self.errors("resolve", path):
            return self.client.normalize(path)

    def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        """Rename atomically: replacing ``new`` (posix-rename@openssh.com), or with
        ``replace=False`` only if nothing is there (SFTP's RENAME links, then unlinks)."""
        with self.errors("rename to " + repr(new), old):
            if replace:
                self.client.posix_rename(old, new)
                return
            try:
                self.client.rename(old, new)
            except OSError as e:
                if e.errno is None and self.lexists(new):
                    raise self.exists_error(old, new) from e
                raise

    def lexists(self, path: str) -> bool:
        """True when anything, a dangling symlink too, is at ``path``."""
        with self.errors("lstat", path):
            try:
                self.client.lstat(path)
            except FileNotFoundError:
                return False
        return True

    def truncate(self, path: str, size: int) -> None:
        """Cut a remote file to ``size`` bytes."""
        with self.errors("truncate", path):
            self.client.truncate(path, size)

    def disk_space(self, path: str) -> DiskSpace | None:
        """Free space where ``path`` lives (statvfs@openssh.com), or None if unsupported."""
        raw: Any = self.client
        with self.errors("statvfs", path):
            try:
                t, msg = raw._request(CMD_EXTENDED, "statvfs@openssh.com", path)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EACCES):
                    raise
                return None
        if t != CMD_EXTENDED_REPLY:
            return None
        _bsize, frsize, blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
        return DiskSpace(free=int(bavail * frsize), total=int(blocks * frsize))

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
        raw: Any = self.client
        answers = _Answers()
        with self.errors("read", path):
            handle = self.client.open(path, "rb")
            try:
                pending: deque[tuple[int, int, int]] = deque()
                position = offset
                while pending or position < size:
                    if cancel is not None and cancel.is_set():
                        return
                    while len(pending) < self.max_requests and position < size:
                        length = min(self.read_size, size - position)
                        num = raw._async_request(
                            answers, CMD_READ, handle.handle, int64(position), length
                        )
                        pending.append((num, position, length))
                        position += length
                    num, start, length = pending.popleft()
                    data = self._answer(raw, answers, num, CMD_DATA, path).get_string()
                    if not data:
                        raise TransferError(
                            f"location {self.name!r}: {path!r} ended at {start} bytes, "
                            f"expected {size}",
                            location=self.name,
                            path=path,
                        )
                    try:
                        sink(data)
                    except Exception as e:
                        raise SinkError(e) from e
                    progress.advance(len(data))
                    if len(data) < length:  # a short read: ask for the rest first
                        rest = (start + len(data), length - len(data))
                        num = raw._async_request(
                            answers, CMD_READ, handle.handle, int64(rest[0]), rest[1]
                        )
                        pending.appendleft((num, rest[0], rest[1]))
            finally:
                _quietly_close(handle)

    def write_from(
        self,
        source: PushSource,
        path: str,
        progress: TransferProgress,
        *,
        offset: int,
        size: int,
    ) -> None:
        """Write ``source[offset:size]`` to ``path`` (created or cut to ``offset``), then fsync."""
        raw: Any = self.client
        answers = _Answers()
        with self.errors("write", path):
            handle = self.client.open(path, "r+b" if offset else "wb")
            try:
                if offset:
                    handle.truncate(offset)
                source.seek(offset)
                try:
                    self._write_loop(raw, answers, handle, source, path, progress, offset, size)
                    self._fsync(raw, handle.handle)
                except OSError as e:
                    if e.errno is None and self.transport.is_active():
                        needed = size - offset - progress.done
                        space = self.disk_space(path)
                        if space is not None and space.free < needed:
                            raise self.space_error(path, needed) from e
                    raise
            finally:
                _quietly_close(handle)

    def _write_loop(
        self,
        raw: Any,
        answers: _Answers,
        handle: paramiko.SFTPFile,
        source: PushSource,
        path: str,
        progress: TransferProgress,
        offset: int,
        size: int,
    ) -> None:
        pending: deque[tuple[int, int]] = deque()
        position = offset
        while pending or position < size:
            while len(pending) < self.max_requests and position < size:
                chunk = source.read(min(self.write_size, size - position))
                if not chunk:
                    raise TransferError(
                        f"local file for {path!r} shrank to {position} bytes "
                        f"while being sent (expected {size})",
                        location=self.name,
                        path=path,
                    )
                num = raw._async_request(answers, CMD_WRITE, handle.handle, int64(position), chunk)
                pending.append((num, len(chunk)))
                position += len(chunk)
            num, length = pending.popleft()
            self._answer(raw, answers, num, None, path)
            progress.advance(length)

    def _answer(
        self, raw: Any, answers: _Answers, num: int, expect: int | None, path: str
    ) -> paramiko.Message:
        while num not in answers.got:
            raw._read_response()
        t, msg = answers.got.pop(num)
        if t != expect:
            try:
                raw._convert_status(msg)  # raises on an error status; OK is what a write expects
            except EOFError as e:
                raise TransferError(
                    f"location {self.name!r}: {path!r} ended early (truncated while being read?)",
                    location=self.name,
                    path=path,
                ) from e
        return msg

    def _fsync(self, raw: Any, handle: object) -> None:
        try:
            raw._request(CMD_EXTENDED, "fsync@openssh.com", handle)
        except OSError as e:
            if "unsupported" not in str(e).lower():
                raise

    def _request_sizes(self) -> tuple[int, int]:
        """Read and write request sizes the server accepts (limits@openssh.com)."""
        raw: Any = self.client
        try:
            t, msg = raw._request(CMD_EXTENDED, "limits@openssh.com")
        except (OSError, paramiko.SSHException):
            return DEFAULT_REQUEST, DEFAULT_REQUEST
        if t != CMD_EXTENDED_REPLY:
            return DEFAULT_REQUEST, DEFAULT_REQUEST
        _packet, read, write = msg.get_int64(), msg.get_int64(), msg.get_int64()
        return clamp_request(read), clamp_request(write)


def _first_bytes(transport: paramiko.Transport, limit: int = 512, wait: float = 1.0) -> bytes:
    """What the server writes on a new sftp subsystem channel before any request."""
    got = b""
    try:
        channel = transport.open_session(timeout=wait)
        channel.settimeout(wait)
        channel.invoke_subsystem("sftp")
        while len(got) < limit:
            chunk = channel.recv(limit - len(got))
            if not chunk:
                break
            got += chunk
    except (paramiko.SSHException, OSError):
        pass  # socket.timeout is an OSError: what came so far is the answer
    return got


def _quietly_close(handle: paramiko.SFTPFile) -> None:
    # When the link is already gone the server has closed the handle with it.
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        handle.close()
