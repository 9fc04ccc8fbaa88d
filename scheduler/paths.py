"""From a recorder's path to a source workers can reach, and what counts as a recording."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from scheduler.errors import RecordingError

if TYPE_CHECKING:  # the hook checks recordings without loading the settings models
    from worker.settings.scheduler import PathMap

TS_PACKET = 188
SYNC_BYTE = 0x47


def shown(path: Path | str) -> str:
    """A path as a user can read it, even with newlines or undecodable bytes in it."""
    text = os.fsdecode(path)
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in text):
        return repr(text.encode("utf-8", "surrogateescape"))[1:]
    return text if text.isprintable() else repr(text)


def require_utf8(path: Path | str) -> str:
    """The path as text, or a RecordingError when its name is not valid UTF-8."""
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordingError(
            f"{shown(text)}: the file name is not valid UTF-8 (kamado's jobs carry names as "
            "UTF-8 text); rename it, for example with convmv -f cp932 -t utf8",
            path=text,
        ) from None
    return text


def absolute(path: str, cwd: Path | None = None) -> str:
    """An absolute, normalised path (relative ones are taken from ``cwd``), symlinks kept."""
    base = cwd or Path.cwd()
    joined = path if path.startswith("/") else str(base / path)
    return os.path.normpath(joined)


def map_source(path: str, mappings: list[PathMap]) -> str:
    """The source URI for workers: the longest matching prefix mapped, else the path itself."""
    pure = PurePosixPath(path)
    best: PathMap | None = None
    for mapping in mappings:
        if pure.is_relative_to(mapping.recorder) and (
            best is None or len(mapping.recorder) > len(best.recorder)
        ):
            best = mapping
    if best is None:
        return path
    relative = str(pure.relative_to(best.recorder))
    if relative == ".":
        raise RecordingError(f"{shown(path)}: is the mapped directory itself, not a file")
    return f"{best.target}/{relative}"


def unmap_target(target: str, mappings: list[PathMap]) -> str | None:
    """The recorder's path for a worker-side path or URI (``map_source`` backwards): the
    longest matching target mapped back, a plain path kept, an unmapped URI None."""
    best: PathMap | None = None
    for mapping in mappings:
        if (target == mapping.target or target.startswith(mapping.target + "/")) and (
            best is None or len(mapping.target) > len(best.target)
        ):
            best = mapping
    if best is not None:
        # the root mapped ("/") must not come back as "//tmp/…"
        return best.recorder.rstrip("/") + target[len(best.target) :] or "/"
    return None if "://" in target else target


def sniff_ts(path: Path) -> str | None:
    """Why the file is not an MPEG-TS recording, or None when it looks like one."""
    try:
        with path.open("rb") as fh:
            head = fh.read(TS_PACKET * 2 + 4)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not head:
        return "empty"
    # A plain TS has a sync byte every 188 bytes; M2TS (BDAV) adds a 4-byte timestamp.
    for start, step in ((0, TS_PACKET), (4, TS_PACKET + 4)):
        if len(head) > start + step and head[start] == SYNC_BYTE == head[start + step]:
            return None
    if len(head) <= TS_PACKET and head[0] == SYNC_BYTE:
        return None
    return "not an MPEG-TS recording (no sync bytes)"


def check_recording(path: Path) -> int:
    """Raise RecordingError unless ``path`` is a readable, non-empty regular file; its size."""
    name = shown(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RecordingError(f"{name}: no such file", path=path) from None
    except PermissionError as e:
        raise RecordingError(f"{name}: {e.strerror or e}", path=path, denied=True) from e
    except OSError as e:
        raise RecordingError(f"{name}: {e.strerror or e}", path=path) from e
    if not path.is_file():
        raise RecordingError(f"{name}: not a regular file", path=path)
    if not os.access(path, os.R_OK):
        raise RecordingError(f"{name}: not readable (permission denied)", path=path, denied=True)
    if stat.st_size == 0:
        raise RecordingError(f"{name}: the file is empty", path=path)
    return stat.st_size


def check_started(path: Path) -> None:
    """Raise RecordingError when a recording that has just started cannot be one: it may
    be missing or empty still (the recorder creates and fills it), but if something is
    there it must be a regular file."""
    try:
        if path.exists() and not path.is_file():
            raise RecordingError(f"{shown(path)}: not a regular file", path=path)
    except OSError as e:  # a directory on the way this user may not search
        raise RecordingError(f"{shown(path)}: {e.strerror or e}", path=path) from e
