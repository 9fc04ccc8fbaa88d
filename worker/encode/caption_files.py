"""The caption sidecar as an output: checked before the encode, verified, then committed.

A sidecar (``show.srt`` beside ``show.mp4``) follows the MP4's rules: its name comes from
the MP4's claimed name and its place is claimed in the registry for the job; a file
there that kamado did not write is never replaced (the job is refused before anything is
encoded, unless ``encode.replace_existing``); it is written under the attempt's hidden
name (over SFTP: pushed under it, its bytes checked against the verified file's) and
committed only after it and the MP4 passed verification, before the MP4 itself, so a job
whose MP4 is in place has its sidecar in place too. A recording whose caption stream
held no text gets no sidecar (the result says so).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from worker.broker.claims import Claims
from worker.captions import CaptionPlan, CaptionResult, CaptionStatus, sidecar_path
from worker.encode.ffprobe import run_ffprobe
from worker.errors import OutputConflict, OutputError, OutputRefused, SourceError, VerifyError
from worker.outputs.identity import local_fingerprint, real_path
from worker.outputs.view import OutputView
from worker.staging.local import file_sha256
from worker.staging.outgoing import stage_out

if TYPE_CHECKING:
    from worker.encode.remote_output import RemoteOutput

NO_TEXT = "the caption stream held no caption text in this recording; no sidecar written"


def sidecar_temp(temp: Path, fmt: str) -> Path:
    """The hidden name an attempt writes its sidecar to: the MP4's temporary name + format."""
    return temp.with_name(f"{temp.name}.{fmt}")


def claim_sidecar(claims: Claims, view: OutputView, place: str, job_id: str, source: str) -> None:
    """Claim the sidecar's place for the job in the registry, as the MP4's was claimed: two
    outputs whose names differ only in the suffix's case (``a.mp4``, ``a.MP4``) would
    otherwise share ``a.srt``. OutputConflict when another job holds it, OutputRefused
    when it is a recording kamado was given."""
    answer = claims.claim(job_id, ("", source), "refuse", [view.key(place)])
    if answer.status == "taken":
        raise OutputConflict(
            f"{place}: already the caption sidecar or output of job {answer.owner} "
            f"({claims.source_of(answer.owner)}); job {job_id} ({source}) was refused",
            path=place,
        )
    if answer.status != "ok":
        raise OutputRefused(
            f"{place}: is a recording kamado was given; no caption sidecar goes there",
            path=place,
        )


def may_replace(
    place: str, view: OutputView, claims: Claims | None, *, replace_existing: bool
) -> bool:
    """Whether the sidecar may go to ``place``: True when a file kamado wrote (or, with
    ``replace_existing``, any file) is there; False when nothing is. OutputConflict for a
    file kamado did not write."""
    there = view.existing(place)
    if there is None:
        return False
    if replace_existing or (claims is not None and claims.written(view.key(place)) == there):
        return True
    raise OutputConflict(
        f"{place}: a file kamado did not write is where the caption sidecar goes; move it, "
        'set the profile\'s captions.sidecar = "none", or set encode.replace_existing = true',
        path=place,
    )


def planned_sidecar(output: str, plan: CaptionPlan) -> str | None:
    """The sidecar's final place for an output, when the plan writes one."""
    if plan.status is not CaptionStatus.KEPT or plan.sidecar_format is None:
        return None
    return sidecar_path(output, plan.sidecar_format)


def _subtitle_codecs(ffprobe: str, path: Path) -> list[str]:
    data = run_ffprobe(ffprobe, path)
    return [
        str(s.get("codec_name"))
        for s in data.get("streams", [])
        if s.get("codec_type") == "subtitle"
    ]


def verify_captions(ffprobe: str, mp4: Path, plan: CaptionPlan) -> bool:
    """Check the MP4 holds one mov_text stream per kept caption stream and the sidecar
    reads as its format; True when there is a sidecar with text to commit."""
    if plan.status is not CaptionStatus.KEPT:
        return False
    found = _subtitle_codecs(ffprobe, mp4).count("mov_text")
    if found != len(plan.streams):
        raise VerifyError(
            f"{mp4}: {found} mov_text caption streams, expected {len(plan.streams)}", path=mp4
        )
    temp = plan.sidecar_temp
    if temp is None:
        return False
    if not temp.is_file():
        raise VerifyError(f"{temp}: ffmpeg wrote no caption sidecar", path=temp)
    if temp.stat().st_size == 0:
        return False
    try:
        codecs = _subtitle_codecs(ffprobe, temp)
    except SourceError as e:
        raise VerifyError(f"{temp}: the caption sidecar does not read back: {e}", path=temp) from e
    if len(codecs) != 1:
        raise VerifyError(f"{temp}: the caption sidecar holds {len(codecs)} streams", path=temp)
    return True


def unchanged_sidecar(plan: CaptionPlan, written: str | None) -> Path:
    """The verified sidecar's temporary file, if it is still the file that was verified
    (``written``: its fingerprint taken before verification); OutputError if not."""
    temp = plan.sidecar_temp
    assert temp is not None  # verify_captions returned True
    if local_fingerprint(str(temp)) != written:
        raise OutputError(f"{temp}: changed after verification; not committed", path=temp)
    return temp


def commit_local_sidecar(
    plan: CaptionPlan,
    final: str,
    *,
    written: str | None,
    replace: bool,
    commit: Callable[[Path, Path, bool], None],
    on_committed: Callable[[str, str], None],
) -> None:
    """Move a verified sidecar into place (``commit`` is encode's own, never replacing a
    file unless ``replace``) and record that kamado wrote it."""
    temp = unchanged_sidecar(plan, written)
    commit(temp, Path(final), replace)
    fingerprint = local_fingerprint(final)
    if fingerprint is not None:
        on_committed(real_path(final), fingerprint)


def caption_result(plan: CaptionPlan, sidecar: str | None, *, had_text: bool) -> CaptionResult:
    """The captions part of the job's result."""
    if plan.sidecar_format is not None and plan.status is CaptionStatus.KEPT and not had_text:
        return plan.result().model_copy(update={"reason": NO_TEXT})
    return plan.result(sidecar)


def deliver_remote_sidecar(
    remote: RemoteOutput,
    plan: CaptionPlan,
    final: str,
    *,
    written: str | None,
    replace: bool,
    before_commit: Callable[[], None],
    on_committed: Callable[[str, str], None],
) -> None:
    """Push a verified sidecar beside an SFTP output under the attempt's hidden name, its
    bytes checked against the verified file's, and rename it into place (never replacing a
    file unless ``replace``); then record that kamado wrote it."""
    digest = file_sha256(unchanged_sidecar(plan, written))
    temp = unchanged_sidecar(plan, written)  # the bytes hashed are the bytes verified
    with stage_out(
        remote.settings,
        temp,
        final,
        tag=remote.tag,
        expected_sha256=digest,
        replace=replace,
    ) as pending:
        before_commit()
        pending.commit()
        landed = pending.final
    if landed is not None:
        on_committed(remote.view.key(final), f"{landed.size}:{landed.mtime}")
