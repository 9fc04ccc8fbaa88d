"""`kamado hook ... --wait`: deliver in the hook's own process and report the job.

It pings the broker with a short timeout, delivers the older spooled entries and its
own, and spools when the broker is away (a hook never loses its recording).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scheduler.delivery.deliverer import Deliverer, drain
from scheduler.delivery.hook_jobs import Skipped, action_of, detail_of, submission_for
from scheduler.hooks.quick import no_broker
from scheduler.recorders import HookInput
from scheduler.spool.durable import Spool
from worker.errors import BrokerError
from worker.settings.model import Settings, spool_dir

__all__ = ["HookOutcome", "run_hook"]


@dataclass(frozen=True)
class HookOutcome:
    """What a hook did with its recording."""

    # submitted, exists, held, spooled, skipped; for a live job (scheduler.live):
    # live: recording, live: waiting, live: following, live: stopping, released, ...
    action: str
    job_id: str | None = None
    detail: str = ""


def run_hook(
    settings: Settings, origin: str, data: HookInput, *, cwd: Path | None = None
) -> HookOutcome:
    """Submit (or spool) one finished recording now; raises only for bad input or config."""
    sub = submission_for(settings, origin, data, cwd)
    if isinstance(sub, Skipped):
        return _skipped(settings, sub)
    spool = Spool(spool_dir(settings))
    if settings.broker_url is None:
        spool.put(sub)
        raise no_broker(spool.directory)
    if spool.service_running():
        spool.put(sub)
        return HookOutcome("spooled", sub.job.id, "the scheduler service delivers it")
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
    return HookOutcome(action_of(sub, done), sub.job.id, detail_of(done))


def _skipped(settings: Settings, skipped: Skipped) -> HookOutcome:
    """Nothing to submit; a live job of the recording is still told when the broker
    answers (else its live attempt falls back on its own, at the programme's end)."""
    from scheduler.live import tell_skipped

    if skipped.job_id is None or settings.broker_url is None:
        return HookOutcome("skipped", skipped.job_id, skipped.reason)
    deliverer = Deliverer(settings, timeout=settings.scheduler.hook_connect_timeout)
    try:
        told = tell_skipped(deliverer, skipped.job_id)
    except BrokerError as e:
        return HookOutcome("skipped", skipped.job_id, f"{skipped.reason}; broker unreachable: {e}")
    finally:
        deliverer.close()
    if told is None:
        return HookOutcome("skipped", skipped.job_id, skipped.reason)
    return HookOutcome(f"skipped, {told.outcome}", skipped.job_id, detail_of(told))
