"""Verified outputs kept on this worker after their push failed, so a retry only pushes.

A remote output is encoded and verified in scratch, then pushed. When the push fails (a
full remote disk, a dropped link after the retries), the verified file moves to
``<scratch_dir>/outbox/<job_id>.mp4`` with ``<job_id>.json`` beside it (output URI, size,
sha256, the encode's result). The next attempt of that job on this worker finds it and
pushes it without encoding again; the push compares the bytes it sends with the kept
sha256, so a kept file that changed is never committed (it is dropped and the job encoded
anew).

A kept file is removed when its push commits, when the push fails in a way no retry can
mend (the job fails), when the job's output changed, and otherwise after ``KEEP_SECONDS``
(checked each time a file is kept or looked up). An attempt on another worker cannot see
it and encodes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from worker.staging.local import LocalFiles, fsync_dir

OUTBOX = "outbox"
KEEP_SECONDS = 7 * 86400.0


@dataclass(frozen=True)
class Kept:
    """A verified output waiting for its push."""

    path: Path
    job_id: str
    output: str
    size: int
    sha256: str
    result: dict[str, Any]


def outbox_dir(scratch_dir: Path) -> Path:
    """Where kept outputs live."""
    return scratch_dir / OUTBOX


def _paths(scratch_dir: Path, job_id: str) -> tuple[Path, Path]:
    box = outbox_dir(scratch_dir)
    return box / f"{job_id}.mp4", box / f"{job_id}.json"


def keep(
    scratch_dir: Path,
    job_id: str,
    verified: Path,
    *,
    output: str,
    sha256: str,
    result: dict[str, Any],
) -> Kept:
    """Move a verified output (in scratch) to the outbox and record what it is."""
    clean_outbox(scratch_dir)
    data, meta = _paths(scratch_dir, job_id)
    files = LocalFiles("scratch")
    with files.errors("keep", str(verified)):
        data.parent.mkdir(parents=True, exist_ok=True)
        verified.replace(data)
        kept = Kept(data, job_id, output, data.stat().st_size, sha256, result)
        record = {k: v for k, v in asdict(kept).items() if k != "path"}
        partial = meta.with_name(meta.name + ".new")
        partial.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        partial.replace(meta)
    fsync_dir(data.parent)
    return kept


def find(scratch_dir: Path, job_id: str, output: str) -> Kept | None:
    """The kept output of this job, if one is here, whole, and meant for ``output``."""
    clean_outbox(scratch_dir)
    data, meta = _paths(scratch_dir, job_id)
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
        kept = Kept(
            data,
            str(record["job_id"]),
            str(record["output"]),
            int(record["size"]),
            str(record["sha256"]),
            dict(record["result"]),
        )
        whole = data.stat().st_size == kept.size
    except (OSError, ValueError, KeyError, TypeError):
        whole, kept = False, None
    if kept is None or not whole or kept.job_id != job_id or kept.output != output:
        drop(scratch_dir, job_id)
        return None
    return kept


def drop(scratch_dir: Path, job_id: str) -> None:
    """Remove a job's kept output, if any."""
    for path in _paths(scratch_dir, job_id):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_outbox(scratch_dir: Path, *, older_than: float = KEEP_SECONDS) -> int:
    """Remove kept outputs older than ``older_than`` seconds; how many files went."""
    box = outbox_dir(scratch_dir)
    cutoff = time.time() - older_than
    removed = 0
    for path in box.iterdir() if box.is_dir() else ():
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
