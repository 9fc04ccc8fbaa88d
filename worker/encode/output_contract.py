"""The output contract: the rules every output obeys, checked at submission and on the worker.

An output is never the source (compared by real path and inode, not by spelling), never a
recording kamado was given, lies under ``encode.output_dir`` (or, with none set, beside
its source) or under a local location with ``writable = true``, ends in ``.mp4``, and its
name fits 255 bytes. Its place is claimed in the registry before anything is written: a
second job that maps to a taken place, or to a file kamado did not write, gets
``<stem> (2).mp4`` (``encode.on_conflict = "rename"``) or fails naming both sides
(``"refuse"``); a file kamado did not write is replaced only with
``encode.replace_existing = true``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from worker.broker.claims import Claims
from worker.errors import (
    BadInputError,
    OutputConflict,
    OutputError,
    OutputRefused,
    SourceError,
    StagingError,
)
from worker.jobs import Job, is_uri
from worker.outputs.identity import LocalIdentity, local_identity, real_path, require_regular
from worker.outputs.names import MAX_NAME_BYTES, SUFFIX, is_temp_name, numbered, split_dir
from worker.outputs.view import BlindView, LocalView, OutputView
from worker.settings.model import Settings
from worker.settings.staging import LocalLocation
from worker.staging.uri import Target, resolve

MAX_CANDIDATES = 1000
BATCH = 16


@dataclass(frozen=True)
class Chosen:
    """The output an attempt writes: its path, its claimed place, and whether a file kamado
    wrote (or ``replace_existing`` allows replacing) is there now."""

    path: str
    key: str
    replace: bool


def check_name(output: str) -> None:
    """An output's name ends in ``.mp4`` and fits 255 bytes of UTF-8."""
    _, name = split_dir(output)
    if not name.lower().endswith(SUFFIX):
        raise OutputRefused(f"{output}: an output must be an .mp4 file", path=output)
    if is_temp_name(name):
        raise OutputRefused(f"{output}: the name is kamado's temporary-file form", path=output)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise OutputRefused(
            f"{output!r}: the output name is not valid UTF-8", path=output
        ) from None
    if size > MAX_NAME_BYTES:
        raise OutputRefused(
            f"{output}: the output name is {size} bytes; file systems allow {MAX_NAME_BYTES}",
            path=output,
        )


def _under(path: str, root: str) -> bool:
    return PurePosixPath(path).is_relative_to(root)


def allowed_roots(settings: Settings, source: LocalIdentity | None) -> list[str]:
    """The real directories outputs may go to on this machine."""
    roots = []
    if settings.encode.output_dir is not None:
        roots.append(real_path(str(settings.encode.output_dir.expanduser().absolute())))
    elif source is not None:
        roots.append(str(Path(source.real).parent))
    for loc in settings.staging.locations.values():
        if isinstance(loc, LocalLocation) and loc.writable:
            roots.append(real_path(str(loc.path)))
    return roots


def refused_location(settings: Settings, target: Target, real: str) -> str | None:
    """The name of a ``writable = false`` local location the output would land in, if any."""
    for name, loc in settings.staging.locations.items():
        if loc.writable:
            continue
        if name == target.location or (
            isinstance(loc, LocalLocation) and _under(real, real_path(str(loc.path)))
        ):
            return name
    return None


def check_local_output(
    settings: Settings,
    target: Target,
    source: LocalIdentity | None,
    *,
    places: bool,
) -> LocalIdentity:
    """A local output is not the source, not on a read-only location, (and) in an allowed place."""
    output = local_identity(target.path)
    if source is not None and output.same_file(source):
        raise OutputRefused(
            f"{target.uri}: the output would overwrite the source {source.real}", path=target.uri
        )
    read_only = refused_location(settings, target, output.real)
    if read_only is not None:
        raise OutputRefused(
            f"{target.uri}: location {read_only!r} has writable = false; outputs may not go there",
            path=target.uri,
        )
    if places:
        roots = allowed_roots(settings, source)
        if not any(_under(output.real, root) for root in roots):
            shown = ", ".join(roots) or "none configured"
            raise OutputRefused(
                f"{target.uri}: outside the places outputs may go ({shown}); set "
                "encode.output_dir or add a [staging.locations] entry with writable = true",
                path=target.uri,
            )
    return output


def choose_output(
    settings: Settings,
    claims: Claims,
    *,
    job_id: str,
    source_key: str,
    source_desc: str,
    output: str,
    view: OutputView,
) -> Chosen:
    """Claim ``output`` (or its first free ``(n)`` variant) for the job; see the module doc."""
    encode = settings.encode
    base_key = view.key(output)
    known = claims.source_owner(base_key)
    if known is not None:
        raise OutputRefused(
            f"{output}: is the recording of job {known} ({claims.source_of(known)}); "
            "kamado never writes over a recording",
            path=output,
        )
    size = 1 if encode.on_conflict == "refuse" else BATCH
    for start in range(1, MAX_CANDIDATES + 1, size):
        paths: dict[str, str] = {}
        present: set[str] = set()
        for n in range(start, start + size):
            path = numbered(output, n)
            key = view.key(path)
            there = view.existing(path)
            if there is not None:
                ours = claims.written(key) == there
                if not (ours or encode.replace_existing):
                    if encode.on_conflict == "refuse":
                        raise OutputConflict(
                            f"{path}: a file kamado did not write is there (job {job_id}, "
                            f"source {source_desc}); move it, or set encode.replace_existing "
                            '= true or encode.on_conflict = "rename"',
                            path=path,
                        )
                    continue
                present.add(key)
            paths.setdefault(key, path)
        if not paths:
            continue
        answer = claims.claim(job_id, (source_key, source_desc), encode.on_conflict, list(paths))
        if answer.status == "ok":
            return Chosen(paths[answer.key], answer.key, answer.key in present)
        if answer.status == "taken":
            raise OutputConflict(
                f"{output}: already the output of job {answer.owner} "
                f"({claims.source_of(answer.owner)}); job {job_id} ({source_desc}) was refused "
                '(encode.on_conflict = "refuse")',
                path=output,
            )
    raise OutputRefused(
        f"{output}: {MAX_CANDIDATES} names are taken; choose another output_dir", path=output
    )


def with_output(job: Job, local_or_uri: str, chosen: Chosen) -> Job:
    """The job with its output renamed to the chosen name (the directory kept as spelled)."""
    if chosen.path == local_or_uri:
        return job
    head, _ = split_dir(job.output)
    _, name = split_dir(chosen.path)
    return job.model_copy(update={"output": head + name})


def source_identity(settings: Settings, job: Job) -> tuple[Target, LocalIdentity | None]:
    """The source's target and, when it is on this machine, its checked identity."""
    target = resolve(settings.staging, job.source)
    if target.kind != "local":
        return target, None
    require_regular(target.path)
    return target, local_identity(target.path)


def check_task(settings: Settings, claims: Claims, job: Job) -> tuple[Job, bool]:
    """The worker's check of a task before it touches a file: the job to run (its output
    maybe renamed) and whether the file at its output may be replaced.

    Raises SourceError, OutputRefused/OutputConflict or a staging BadUriError (permanent).
    """
    check_name(job.output)
    target, source = source_identity(settings, job)
    output = resolve(settings.staging, job.output)
    if output.kind != "local":
        if output.location and not settings.staging.locations[output.location].writable:
            raise OutputRefused(
                f"{job.output}: location {output.location!r} has writable = false; outputs "
                "may not go there",
                path=job.output,
            )
        return job, False  # the SFTP side claims with the server's identity (staging)
    parent = Path(output.path).parent
    if not os.path.isdir(parent):  # noqa: PTH112 (False for any OSError, e.g. a >255-byte part)
        raise OutputError(f"{job.output}: output directory {parent} does not exist", path=parent)
    check_local_output(settings, output, source, places=True)
    chosen = choose_output(
        settings,
        claims,
        job_id=job.id,
        source_key=source.real if source else target.uri,
        source_desc=job.source,
        output=output.path,
        view=LocalView(),
    )
    return with_output(job, output.path, chosen), chosen.replace


def inspect_submission(settings: Settings, job: Job) -> tuple[str, str, OutputView]:
    """What a submitter can check without the registry: the source is a regular file, the
    output is not it and not on a read-only location. Returns (source place, output path
    here, the view to claim it with).

    Raises BadInputError (a source that is not a regular file) or OutputRefused.
    """
    check_name(job.output)
    source: LocalIdentity | None = None
    if not is_uri(job.source) and os.path.lexists(job.source):
        try:
            require_regular(job.source)
        except SourceError as e:
            raise BadInputError(str(e)) from None
        source = local_identity(job.source)
    view: OutputView = BlindView()
    path = job.output
    try:
        output = resolve(settings.staging, job.output)
    except StagingError:  # a location only the workers know: they check it
        return (source.real if source else job.source), path, view
    if output.kind == "local":
        path = output.path
        check_local_output(settings, output, source, places=False)
        if os.path.isdir(Path(path).parent):  # noqa: PTH112 (never raises)
            view = LocalView()
    elif output.location and not settings.staging.locations[output.location].writable:
        raise OutputRefused(
            f"{job.output}: location {output.location!r} has writable = false", path=job.output
        )
    return (source.real if source else job.source), path, view


def check_submission(settings: Settings, claims: Claims, job: Job) -> Job:
    """The submitter's check and claim: the job with the output it was given."""
    source_key, path, view = inspect_submission(settings, job)
    chosen = choose_output(
        settings,
        claims,
        job_id=job.id,
        source_key=source_key,
        source_desc=job.source,
        output=path,
        view=view,
    )
    return with_output(job, path, chosen)
