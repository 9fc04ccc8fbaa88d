"""The submission a valid hook request makes, and the word a hook reports for it.

A hook normally spools its request and returns (:mod:`scheduler.hooks.quick`); delivery
(:func:`scheduler.delivery.deliverer.drain`) then builds the submission here, as does
`kamado hook ... --wait` (:mod:`scheduler.delivery.direct`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.recorder_input import HookRequest
from scheduler.recorders import HookInput, hook_input
from scheduler.submission import Submission, prepare, skipped_job_id
from worker.settings.model import Settings

if TYPE_CHECKING:
    from worker.submit import Submitted

SKIP_FAILED = "a failed recording (scheduler.hold.failed_recordings)"
LIVE_OFF = "a recording's start, and live jobs are off ([live] enabled = false)"


@dataclass(frozen=True)
class Skipped:
    """A hook run config says to submit nothing for: why, and (a finish hook's) the job a
    live attempt of the recording may hold, which is still told (:mod:`scheduler.live`)."""

    reason: str
    job_id: str | None = None


def submission_for(
    settings: Settings, origin: str, data: HookInput, cwd: Path | None
) -> Submission | Skipped:
    """The submission a hook makes, or Skipped when config says to submit nothing.

    An EPGStation recording's output is registered in its library when
    ``scheduler.epgstation.url`` is set (:mod:`scheduler.epgstation.register`).
    """
    if data.live and not settings.live.enabled:
        return Skipped(LIVE_OFF)
    sub = prepare(
        settings,
        data.path,
        origin=origin,
        recording=data.recording,
        failed=data.failed,
        flags=data.flags,
        cwd=cwd,
        live=data.live,
    )
    if sub is None:
        job_id = skipped_job_id(
            settings, data.path, origin=origin, recording=data.recording, cwd=cwd
        )
        return Skipped(SKIP_FAILED, job_id)
    recording = data.recording
    if (
        origin == "epgstation"
        and settings.scheduler.epgstation.url is not None
        and recording.recorded_id is not None
    ):
        sub = sub.model_copy(update={"register_in": "epgstation"})
    return sub


def request_submission(settings: Settings, request: HookRequest) -> Submission | Skipped:
    """The submission a spooled hook request makes (Skipped: config says submit nothing)."""
    return submission_for(settings, request.origin, hook_input(request), None)


def action_of(sub: Submission, done: Submitted) -> str:
    """The word a hook reports for a delivered submission."""
    from scheduler.live import LiveSubmitted

    if isinstance(done, LiveSubmitted):
        return done.outcome
    if sub.held and done.outcome != "exists":
        return "held"
    return "submitted" if done.outcome == "created" else done.outcome


def detail_of(done: Submitted) -> str:
    """What a hook reports beside the word: where the job went, or what a live job does."""
    from scheduler.live import LiveSubmitted

    if isinstance(done, LiveSubmitted) and done.detail:
        return done.detail
    return done.queue
