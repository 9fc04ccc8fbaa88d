"""Recorder hooks after the input is valid: the job a hook request makes, and `--wait`.

A hook normally spools its request and returns (:mod:`scheduler.hooks.quick`); delivery
(:func:`scheduler.spool.deliver.drain`) then builds the submission here. `kamado hook ... --wait`
delivers in the hook's own process instead and reports the job: it pings the broker with
a short timeout, delivers the older spooled entries and its own, and spools when the
broker is away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.hooks.quick import no_broker
from scheduler.hooks.recorder_input import HookRequest
from scheduler.hooks.recorders import HookInput, hook_input
from scheduler.spool.durable import Spool, spool_dir
from scheduler.submission import Submission, prepare
from worker.errors import BrokerError
from worker.settings.model import Settings

if TYPE_CHECKING:
    from worker.broker.submit import Submitted


@dataclass(frozen=True)
class HookOutcome:
    """What a hook did with its recording."""

    action: str  # submitted, exists, held, spooled, skipped
    job_id: str | None = None
    detail: str = ""


def submission_for(
    settings: Settings, origin: str, data: HookInput, cwd: Path | None
) -> Submission | None:
    """The submission a hook makes, or None when config says to skip failed recordings."""
    return prepare(
        settings,
        data.path,
        origin=origin,
        recording=data.recording,
        failed=data.failed,
        flags=data.flags,
        cwd=cwd,
    )


def request_submission(settings: Settings, request: HookRequest) -> Submission | None:
    """The submission a spooled hook request makes (None: config skips failed recordings)."""
    return submission_for(settings, request.origin, hook_input(request), None)


def action_of(sub: Submission, done: Submitted) -> str:
    """The word a hook reports for a delivered submission."""
    if sub.held and done.outcome != "exists":
        return "held"
    return "submitted" if done.outcome == "created" else done.outcome


def run_hook(
    settings: Settings, origin: str, data: HookInput, *, cwd: Path | None = None
) -> HookOutcome:
    """Submit (or spool) one finished recording now; raises only for bad input or config."""
    sub = submission_for(settings, origin, data, cwd)
    if sub is None:
        return HookOutcome(
            "skipped", detail="a failed recording (scheduler.hold.failed_recordings)"
        )
    spool = Spool(spool_dir(settings))
    if settings.broker_url is None:
        spool.put(sub)
        raise no_broker(spool.directory)
    if spool.service_running():
        spool.put(sub)
        return HookOutcome("spooled", sub.job.id, "the scheduler service delivers it")
    from scheduler.spool.deliver import Deliverer, drain

    deliverer = Deliverer(settings, timeout=settings.scheduler.hook_connect_timeout)
    try:
        try:
            deliverer.state.ping()
            drained = drain(spool, deliverer)
            if drained.error:
                raise BrokerError(drained.error)
            done = deliverer.submit(sub)
        except BrokerError as e:
            spool.put(sub)
            return HookOutcome("spooled", sub.job.id, f"broker unreachable: {e}")
    finally:
        deliverer.close()
    return HookOutcome(action_of(sub, done), sub.job.id, done.queue)
