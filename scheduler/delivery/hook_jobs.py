"""The submission a valid hook request makes, and the word a hook reports for it.

A hook normally spools its request and returns (:mod:`scheduler.hooks.quick`); delivery
(:func:`scheduler.delivery.deliverer.drain`) then builds the submission here, as does
`kamado hook ... --wait` (:mod:`scheduler.delivery.direct`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.recorder_input import HookRequest
from scheduler.recorders import HookInput, hook_input
from scheduler.submission import Submission, prepare
from worker.settings.model import Settings

if TYPE_CHECKING:
    from worker.submit import Submitted


def submission_for(
    settings: Settings, origin: str, data: HookInput, cwd: Path | None
) -> Submission | None:
    """The submission a hook makes, or None when config says to skip failed recordings.

    An EPGStation recording's output is registered in its library when
    ``scheduler.epgstation.url`` is set (:mod:`scheduler.epgstation.register`).
    """
    sub = prepare(
        settings,
        data.path,
        origin=origin,
        recording=data.recording,
        failed=data.failed,
        flags=data.flags,
        cwd=cwd,
    )
    recording = data.recording
    if (
        sub is not None
        and origin == "epgstation"
        and settings.scheduler.epgstation.url is not None
        and recording.recorded_id is not None
    ):
        sub = sub.model_copy(update={"register_in": "epgstation"})
    return sub


def request_submission(settings: Settings, request: HookRequest) -> Submission | None:
    """The submission a spooled hook request makes (None: config skips failed recordings)."""
    return submission_for(settings, request.origin, hook_input(request), None)


def action_of(sub: Submission, done: Submitted) -> str:
    """The word a hook reports for a delivered submission."""
    if sub.held and done.outcome != "exists":
        return "held"
    return "submitted" if done.outcome == "created" else done.outcome
