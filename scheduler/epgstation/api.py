"""EPGStation's HTTP API, the calls kamado makes: read a recording, upload a video file.

Only the standard library: a multipart upload streams the file from disk in chunks (an
output is gigabytes). Errors are :class:`EpgstationAway` (connection refused, a timeout,
a 5xx that says nothing about the request: worth another try) or
:class:`EpgstationRefused` (the request itself is wrong: a recording that is gone, an
unknown parent directory).
"""

from __future__ import annotations

import http.client
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.errors import KamadoError

__all__ = ["EpgstationApi", "EpgstationAway", "EpgstationRefused", "Upload"]

CHUNK = 1 << 20
# Errors EPGStation answers with 500 that are about the request, not the server.
REFUSALS = ("RecordedIdIsNull", "ParentDirectoryIsNull", "FileMoveError")


class EpgstationAway(KamadoError):
    """EPGStation did not answer, or failed in a way another try may fix."""


class EpgstationRefused(KamadoError):
    """EPGStation refused the request itself."""


@dataclass(frozen=True)
class Upload:
    """One video file to add to a recording."""

    recorded_id: int
    path: Path
    parent_dir: str
    view_name: str
    sub_dir: str | None = None
    file_type: str = "encoded"


def _field(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


# EPGStation names a taken file "name(1).ext", "name(2).ext", ...: room for that.
TAKEN_ROOM = len("(99)")
NAME_MAX = 255


def upload_name(name: str) -> str:
    """The name EPGStation will store an upload under, as kamado sends it.

    EPGStation's parser (busboy) takes a backslash for a Windows path separator and a
    leading "X:" for a drive, keeping only what follows: those go as "￥" and "：", the
    stand-ins EPGStation itself puts in recordings' names; CR and LF go percent-encoded.
    The name is cut (at a character, the extension kept) to leave EPGStation room for
    "(n)" when it is taken: kamado's own output usually sits in the same directory.
    """
    mapped = name.replace("\\", "\uffe5").replace("\r", "%0D").replace("\n", "%0A")
    if len(mapped) > 1 and mapped[1] == ":" and mapped[0].isascii() and mapped[0].isalpha():
        mapped = f"{mapped[0]}\uff1a{mapped[2:]}"
    limit = NAME_MAX - TAKEN_ROOM
    if len(mapped.encode()) <= limit:
        return mapped
    stem, dot, extension = mapped.rpartition(".")
    suffix = f".{extension}" if dot and stem else ""
    stem = stem if suffix else mapped
    budget = limit - len(suffix.encode())
    return stem.encode()[:budget].decode("utf-8", "ignore") + suffix


def _quoted(name: str) -> str:
    """The name for Content-Disposition's filename: :func:`upload_name`, its quotes
    escaped (busboy unescapes them), UTF-8 as browsers send it."""
    return upload_name(name).replace('"', '\\"')


class EpgstationApi:
    """A client of one EPGStation server (``http://host:port``)."""

    def __init__(self, url: str, *, timeout: float = 600.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise KamadoError(f"scheduler.epgstation.url {url!r}: expected http://host:port")
        self.url = url.rstrip("/")
        self._parsed = parsed
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        cls = (
            http.client.HTTPSConnection
            if self._parsed.scheme == "https"
            else http.client.HTTPConnection
        )
        return cls(self._parsed.hostname or "", self._parsed.port, timeout=self.timeout)

    def _request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        base = self._parsed.path.rstrip("/")
        what = f"EPGStation {self.url}: {method} {path.split('?')[0]}"
        conn = self._connection()
        try:
            conn.request(method, base + path, body=body, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as e:
            raise EpgstationAway(f"{what}: {e}") from e
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")[:200]
        return response.status, data

    @staticmethod
    def _check(what: str, status: int, data: Any) -> None:
        if 200 <= status < 300:
            return
        reason = data.get("errors") or data.get("message") if isinstance(data, dict) else data
        message = f"{what}: HTTP {status} {reason}"
        if status >= 500 and str(reason) not in REFUSALS:
            raise EpgstationAway(message)
        raise EpgstationRefused(message)

    def video_files(self, recorded_id: int) -> list[dict[str, Any]]:
        """The recording's video files (id, name, filename, type, size)."""
        path = f"/api/recorded/{recorded_id}?isHalfWidth=false"
        status, data = self._request("GET", path)
        self._check(f"EPGStation recording {recorded_id}", status, data)
        files = data.get("videoFiles") if isinstance(data, dict) else None
        return list(files or [])

    def upload(self, upload: Upload) -> int:
        """Add the file as a video file of the recording; the new video file's id."""
        before = {f["id"] for f in self.video_files(upload.recorded_id)}
        size = upload.path.stat().st_size
        boundary = "kamado" + secrets.token_hex(12)
        head = b"".join(
            _field(boundary, name, value)
            for name, value in (
                ("recordedId", str(upload.recorded_id)),
                ("parentDirectoryName", upload.parent_dir),
                *((("subDirectory", upload.sub_dir),) if upload.sub_dir else ()),
                ("viewName", upload.view_name),
                ("fileType", upload.file_type),
            )
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{_quoted(upload.path.name)}"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:
            yield head
            with upload.path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
            yield tail

        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        status, data = self._request("POST", "/api/videos/upload", body(), headers)
        self._check(f"EPGStation upload of {upload.path.name}", status, data)
        added = [
            f for f in self.video_files(upload.recorded_id)
            if f["id"] not in before and f.get("type") == upload.file_type
            and f.get("size") == size
        ]  # fmt: skip
        if not added:
            raise EpgstationRefused(
                f"EPGStation accepted {upload.path.name} but recording {upload.recorded_id} "
                "lists no new video file of its size"
            )
        return int(max(f["id"] for f in added))
