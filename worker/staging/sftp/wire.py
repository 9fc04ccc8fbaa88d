"""SFTP version 3 spoken over two pipes (OpenSSH's ``ssh -s sftp``): packets and requests.

Only the requests staging needs. Paths travel as length-prefixed UTF-8 strings inside
the protocol, never through a shell, so any file name is safe. Reads and writes on the
pipes wait at most ``timeout`` seconds; a closed pipe or a silent one is :class:`LinkLost`.
Server refusals are :class:`StatusError` carrying the SFTP status code.
"""

from __future__ import annotations

import errno
import os
import select
import struct

from worker.staging.files import Chunk

# What a request is made of: encoded fields, and data as bytes or a view of a buffer.
Field = bytes | bytearray | memoryview

VERSION = 3
INIT, VERSION_REPLY = 1, 2
OPEN, CLOSE, READ, WRITE = 3, 4, 5, 6
LSTAT, FSETSTAT, OPENDIR, READDIR, REMOVE = 7, 10, 11, 12, 13
REALPATH, STAT, RENAME = 16, 17, 18
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
EXTENDED, EXTENDED_REPLY = 200, 201

FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE = 0, 1, 2, 3, 4
FX_OP_UNSUPPORTED = 8

FXF_READ, FXF_WRITE, FXF_CREAT, FXF_TRUNC = 0x01, 0x02, 0x08, 0x10
ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME = 0x1, 0x2, 0x4, 0x8
ATTR_EXTENDED = 0x80000000
MAX_PACKET = 256 * 1024 + 1024  # the largest answer OpenSSH sends, with headers

_HEAD = struct.Struct(">IBI")  # length, type, request id
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class LinkLost(Exception):
    """Raised when the pipe to ssh closes or stays silent past the timeout."""


class NotSftp(LinkLost):
    """Raised when the server's first bytes are no SFTP greeting (a shell said something)."""

    def __init__(self, sent: bytes) -> None:
        super().__init__(f"the server did not speak SFTP (it sent {sent[:60]!r})")
        self.sent = sent


class StatusError(Exception):
    """Raised when the server answers a request with an error status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message or f"SFTP status {code}")
        self.code = code
        self.errno = {FX_NO_SUCH_FILE: errno.ENOENT, FX_PERMISSION_DENIED: errno.EACCES}.get(code)


class Attrs:
    """The fields of an SFTP ATTRS block staging uses."""

    __slots__ = ("mode", "mtime", "size")

    def __init__(self, size: int | None, mode: int | None, mtime: int | None) -> None:
        self.size = size
        self.mode = mode
        self.mtime = mtime


def string(value: bytes | str) -> bytes:
    """An SFTP string: uint32 length and bytes (str as UTF-8, undecodable bytes kept)."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return _U32.pack(len(raw)) + raw


def u32(value: int) -> bytes:
    """An SFTP uint32."""
    return _U32.pack(value)


def u64(value: int) -> bytes:
    """An SFTP uint64."""
    return _U64.pack(value)


class Reader:
    """Takes fields off the body of one answer, in order."""

    def __init__(self, body: Chunk) -> None:
        self.body = body
        self.at = 0

    def u32(self) -> int:
        """The next uint32."""
        (value,) = _U32.unpack_from(self.body, self.at)
        self.at += 4
        return int(value)

    def u64(self) -> int:
        """The next uint64."""
        (value,) = _U64.unpack_from(self.body, self.at)
        self.at += 8
        return int(value)

    def bytes(self) -> bytes:
        """The next string, as bytes."""
        length = self.u32()
        value = bytes(self.body[self.at : self.at + length])
        self.at += length
        return value

    def text(self) -> str:
        """The next string, decoded as UTF-8 (undecodable bytes kept as surrogates)."""
        return self.bytes().decode("utf-8", "surrogateescape")

    def attrs(self) -> Attrs:
        """The next ATTRS block."""
        flags = self.u32()
        size = self.u64() if flags & ATTR_SIZE else None
        if flags & ATTR_UIDGID:
            self.at += 8
        mode = self.u32() if flags & ATTR_PERMISSIONS else None
        mtime = None
        if flags & ATTR_ACMODTIME:
            self.u32()
            mtime = self.u32()
        if flags & ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.bytes()
                self.bytes()
        return Attrs(size, mode, mtime)


class Wire:
    """Numbered requests out, answers in, over a pair of pipe descriptors."""

    def __init__(self, rfd: int, wfd: int, timeout: float) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.timeout = timeout
        self.extensions: dict[str, bytes] = {}
        self._next = 0
        self._greeted = False
        self._out: list[Field] = []
        self._answers: dict[int, tuple[int, Chunk]] = {}
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)

    def greet(self) -> None:
        """Send INIT (once); ssh holds it until the session is up, so this never waits."""
        if not self._greeted:
            self._greeted = True
            self._out.append(_U32.pack(5) + bytes([INIT]) + _U32.pack(VERSION))
            self.flush()

    def hello(self, timeout: float) -> dict[str, bytes]:
        """Send INIT unless ``greet`` did, read VERSION; the server's extensions (name to data)."""
        self.greet()
        head = self._read_exact(5, timeout)
        length, kind = _U32.unpack_from(head)[0], head[4]
        if kind != VERSION_REPLY or not 5 <= length <= MAX_PACKET:
            raise NotSftp(bytes(head) + self._read_some(512, 0.5))
        body = Reader(self._read_exact(length - 1, timeout))
        body.u32()
        while body.at < len(body.body):
            name = body.text()
            self.extensions[name] = body.bytes()
        return self.extensions

    def send(self, kind: int, *fields: Field) -> int:
        """Queue a request (sent by the next ``flush``); its id."""
        self._next = (self._next + 1) & 0xFFFFFFFF
        size = 5 + sum(len(f) for f in fields)
        self._out.append(_HEAD.pack(size, kind, self._next))
        self._out.extend(fields)
        return self._next

    def flush(self) -> None:
        """Write every queued request to the pipe (one writev: headers and data uncopied)."""
        parts, self._out = self._out, []
        views = [memoryview(part) for part in parts]
        while views:
            try:
                n = os.writev(self.wfd, views)
            except BlockingIOError:
                self._wait(self.wfd, self.timeout, write=True)
                continue
            except BrokenPipeError as e:
                raise LinkLost("the connection closed") from e
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if n:
                views[0] = views[0][n:]

    def answer(self, rid: int) -> tuple[int, Chunk]:
        """The answer (type, body after the id) to request ``rid``, reading until it comes."""
        if self._out:
            self.flush()
        while rid not in self._answers:
            kind, got, body = self._read_packet()
            self._answers[got] = (kind, body)
        return self._answers.pop(rid)

    def call(self, kind: int, *fields: bytes) -> tuple[int, Chunk]:
        """Send one request and wait for its answer."""
        return self.answer(self.send(kind, *fields))

    def _read_packet(self) -> tuple[int, int, Chunk]:
        length, kind, rid = _HEAD.unpack(self._read_exact(9, self.timeout))
        if not 5 <= length <= MAX_PACKET:
            raise LinkLost(f"malformed SFTP packet of {length} bytes")
        if kind == DATA:  # the bulk of a pull: hand the data over without another copy
            size = _U32.unpack(self._read_exact(4, self.timeout))[0]
            if size != length - 9:
                raise LinkLost("malformed SFTP data packet")
            return kind, rid, self._read_exact(size, self.timeout)
        return kind, rid, self._read_exact(length - 5, self.timeout)

    def _read_exact(self, size: int, timeout: float) -> bytearray:
        if size == 0:
            return bytearray()
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            try:
                n = os.readv(self.rfd, [view[got:]])
            except BlockingIOError:
                self._wait(self.rfd, timeout, write=False)
                continue
            if n == 0:
                raise LinkLost("the connection closed")
            got += n
        # A bytearray is as good as bytes to every consumer (hashing, file writes), and
        # copying 255 KiB per answer would cost as much CPU as the hashing.
        return buffer

    def _read_some(self, limit: int, timeout: float) -> bytes:
        """Whatever arrives within ``timeout`` (up to ``limit`` bytes, or until EOF)."""
        got = bytearray()
        while len(got) < limit:
            try:
                chunk = os.read(self.rfd, limit - len(got))
            except BlockingIOError:
                try:
                    self._wait(self.rfd, timeout, write=False)
                except LinkLost:
                    break
                continue
            if not chunk:
                break
            got += chunk
        return bytes(got)

    def _wait(self, fd: int, timeout: float, *, write: bool) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLOUT if write else select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise LinkLost(f"no answer for {timeout:g} s")


def status(body: Chunk) -> tuple[int, str]:
    """The code and message of a STATUS answer."""
    reader = Reader(body)
    code = reader.u32()
    message = reader.text() if reader.at < len(body) else ""
    return code, message


def expect(answer: tuple[int, Chunk], kind: int) -> bytes:
    """The body of an answer of type ``kind``; a STATUS error raises StatusError."""
    got, body = answer
    if got == STATUS:
        code, message = status(body)
        if code == FX_OK and kind == STATUS:
            return bytes(body)
        raise StatusError(code, message)
    if got == kind:
        return bytes(body)
    raise LinkLost(f"unexpected SFTP answer type {got} (wanted {kind})")


def ok(answer: tuple[int, Chunk]) -> None:
    """Accept an OK status; raise StatusError for any other."""
    expect(answer, STATUS)
