"""The next job's source probed while the current one encodes (local sources only).

A job's first step reads its source with ffprobe (about 0.06 s for a 20 s HD recording),
during which nothing encodes. On a worker that runs jobs one after another, the prefetch
peek (worker/runtime/prefetch.py) already knows the next job while this one encodes, and
x264 leaves a little CPU free: :func:`warm` probes the next source then, and
:func:`read_source` hands that result to its job when the file is still the same (its
device, inode, size and modification time), else probes it as always. A result is used
once and at most a few are kept.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from worker.encode.ffprobe import MediaInfo, read_media
from worker.errors import KamadoError

__all__ = ["read_source", "warm"]

log = logging.getLogger("kamado.worker")
KEEP = 4

_Key = tuple[str, int, int, int, int, int | None]
_ready: dict[_Key, MediaInfo] = {}
_lock = threading.Lock()


def _key(path: Path, service_id: int | None) -> _Key | None:
    """What a probe result answers for: this file as it is now, and the programme asked for
    (a worker's ffprobe is the same binary for its whole life)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, service_id)


def warm(ffprobe: str, path: Path, service_id: int | None) -> None:
    """Probe ``path`` now and keep the result for its job (nothing kept on any failure:
    the job's own probe then reports it)."""
    key = _key(path, service_id)
    if key is None:
        return
    try:
        info = read_media(ffprobe, path, service_id=service_id)
    except KamadoError:
        return
    if _key(path, service_id) != key:  # it changed while being read
        return
    with _lock:
        _ready[key] = info
        while len(_ready) > KEEP:
            _ready.pop(next(iter(_ready)))
    log.debug("probed the next job's source ahead: %s", path)


def read_source(ffprobe: str, path: Path, *, service_id: int | None) -> MediaInfo:
    """The source's probe: the one made ahead if the file is unchanged, else a new one."""
    key = _key(path, service_id)
    with _lock:
        info = _ready.pop(key, None) if key is not None else None
    return info if info is not None else read_media(ffprobe, path, service_id=service_id)
