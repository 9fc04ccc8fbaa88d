"""Checks of a remote output's directory before the encode: it exists, takes files, has room.

Run on the connection the push will use, before ffmpeg starts, so a missing directory,
``writable = false``, a directory the user may not write or a full disk fails the job in
seconds instead of after the whole encode.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import PurePosixPath

from worker.settings.staging import StagingSettings
from worker.staging.errors import (
    AccessDeniedError,
    LocationError,
    RemoteNotFoundError,
)
from worker.staging.files import Files, TransferProgress
from worker.staging.outgoing import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    check_free_space,
    require_writable,
    temp_name,
)
from worker.staging.uri import Target


def check_output_directory(
    settings: StagingSettings, files: Files, target: Target, *, tag: str
) -> None:
    """Raise the LocationError that would stop a push to ``target`` later, now.

    The write probe is the attempt's own temporary name (created empty and removed), so a
    probe left by a killed worker is cleaned like any other leftover of that attempt.
    """
    require_writable(settings, target)
    parent = str(PurePosixPath(target.path).parent)
    try:
        st = files.stat(parent)
    except RemoteNotFoundError as e:
        raise RemoteNotFoundError(
            f"{target.describe()!r}: the output directory {parent!r} does not exist on "
            f"location {target.location!r}; create it or fix the output path",
            location=target.location,
            path=parent,
        ) from e
    if not st.is_dir:
        raise RemoteNotFoundError(
            f"{target.describe()!r}: {parent!r} on location {target.location!r} is not a directory",
            location=target.location,
            path=parent,
        )
    probe = temp_name(target.path, tag)
    try:
        files.write_from(io.BytesIO(b""), probe, TransferProgress(), offset=0, size=0)
        files.remove(probe)
    except AccessDeniedError as e:
        raise AccessDeniedError(
            f"{target.describe()!r}: cannot create files in {parent!r} ({e}); give the user "
            "write permission there, or set writable = false on the location",
            location=target.location,
            path=parent,
        ) from e
    check_free_space(settings, files, target, 0)


def remove_stale_pushes(files: Files, target: Target, job_id: str, tag: str) -> list[str]:
    """Remove what earlier attempts of this job left next to the output (a killed push).

    Only the attempt holding the job's lease calls this, so no live push is writing them.
    """
    parent = str(PurePosixPath(target.path).parent)
    ours = PurePosixPath(temp_name(target.path, tag)).name
    removed = []
    for name in files.listdir(parent):
        if (
            name.startswith(f"{TEMP_PREFIX}{job_id}-")
            and name.endswith(TEMP_SUFFIX)
            and name != ours
        ):
            with contextlib.suppress(LocationError):
                files.remove(str(PurePosixPath(parent, name)))
                removed.append(name)
    return removed
