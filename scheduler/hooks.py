"""Running a recorder hook: validate, then deliver now, or spool for later.

A hook must return fast (recorders run hooks one at a time). When a scheduler service
runs on this machine, the hook only spools and the service delivers within a moment;
otherwise the hook pings the broker with a short timeout, delivers the older spooled
submissions and its own, and spools when the broker is away. Celery is never imported
on the spooling path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scheduler.recorders import HookInput
from scheduler.spool import Spool, spool_dir
from scheduler.submission import Submission, prepare
from worker.errors import BrokerError, ConfigError
from worker.settings import Settings


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


def run_hook(
    settings: Settings, origin: str, data: HookInput, *, cwd: Path | None = None
) -> HookOutcome:
    """Submit (or spool) one finished recording; raises only for bad input or config."""
    sub = submission_for(settings, origin, data, cwd)
    if sub is None:
        return HookOutcome(
            "skipped", detail="a failed recording (scheduler.hold.failed_recordings)"
        )
    spool = Spool(spool_dir(settings))
    if settings.broker_url is None:
        spool.put(sub)
        raise ConfigError(
            "no broker configured (set broker_url or KAMADO_BROKER_URL); the recording was "
            f"spooled in {spool.directory}: run `kamado spool flush` once the broker is set"
        )
    if spool.service_running():
        spool.put(sub)
        return HookOutcome("spooled", sub.job.id, "the scheduler service delivers it")
    from scheduler.deliver import Deliverer, drain

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
    action = "held" if sub.held and done.outcome != "exists" else done.outcome
    if action == "created":
        action = "submitted"
    return HookOutcome(action, sub.job.id, done.queue)
