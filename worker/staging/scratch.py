"""Scratch space: the name a pulled source gets there, and whether it fits."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from worker.settings.staging import StagingSettings
from worker.staging.errors import NoSpaceError
from worker.staging.local import free_bytes

MIB = 1024 * 1024


def scratch_path(scratch_dir: Path, uri: str) -> Path:
    """Where a source is pulled: a name derived from the URI, keeping a simple suffix."""
    digest = hashlib.sha256(uri.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    suffix = PurePosixPath(uri).suffix
    keep = suffix if 1 < len(suffix) <= 8 and suffix[1:].isalnum() and suffix.isascii() else ""
    return scratch_dir / f"src-{digest}{keep}"


def check_space(settings: StagingSettings, directory: Path, needed: int) -> None:
    """Raise NoSpaceError unless ``needed`` bytes plus ``min_free_mb`` fit in ``directory``."""
    free = free_bytes(directory)
    want = needed + settings.min_free_mb * MIB
    if free < want:
        raise NoSpaceError(
            f"scratch {str(directory)!r}: {free // MIB} MiB free, {want // MIB} MiB needed "
            f"({needed // MIB} MiB file + min_free_mb {settings.min_free_mb}); free space "
            "or point staging.scratch_dir elsewhere",
            path=str(directory),
            free=free,
            needed=want,
        )
