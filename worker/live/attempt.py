"""A live attempt in the encode task: whether to follow the recording, and the fallback.

A task for a live job runs live only while the job's phase is ``recording`` (the finish
hook has not come); in any other phase it is an ordinary attempt at a finished file. A
live attempt that stops for any reason but a cancel (the feed, ffmpeg or the
verification failed) never fails the job: it ends its attempt and the job goes where
:func:`worker.broker.live.abandon` says: held until the finish hook, or published at
once as an ordinary job, or held or cancelled as the finish hook's policy asked.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery

from worker.broker.live import Phase, abandon, phase_of, read_live, report_lag
from worker.broker.publish import publish
from worker.broker.registry import Registry
from worker.errors import BrokerError, KamadoError
from worker.jobs import Job, JobState
from worker.live.feed import LiveFeed
from worker.live.follow import LiveStopped, Position
from worker.profiles import get_profile
from worker.settings.model import Settings
from worker.staging.uri import resolve

__all__ = ["await_recording", "live_feed", "stop_live"]

log = logging.getLogger("kamado.live")


def live_feed(registry: Registry, job: Job) -> LiveFeed | None:
    """The feed of a live attempt, or None when the job is to run as an ordinary one."""
    if not job.live:
        return None
    state = read_live(registry, job.id)
    if state is None or state.phase is not Phase.RECORDING:
        return None

    def report(position: Position) -> None:
        try:
            report_lag(
                registry,
                job.id,
                lag_s=position.lag_s(time.time()),
                read_bytes=position.fed,
                file_bytes=position.size,
            )
        except BrokerError as e:
            log.warning("job %s: live lag not reported: %s", job.id, e)

    return LiveFeed(
        phase=lambda: phase_of(registry, job.id), deadline=state.deadline, report=report
    )


def await_recording(settings: Settings, job: Job, feed: LiveFeed) -> None:
    """Wait for a local recording to appear (a start hook may come before the file is
    created), at most ``live.start_wait`` seconds; a remote one is waited for by the feed."""
    target = resolve(settings.staging, job.source)
    if target.kind != "local":
        return
    give_up = time.monotonic() + settings.live.start_wait
    while not os.path.lexists(target.path):
        if feed.phase() is not Phase.RECORDING:
            raise LiveStopped(f"{target.path}: the live path ended before the recording appeared")
        if time.monotonic() > give_up:
            raise LiveStopped(
                f"{target.path}: the recording did not appear within "
                f"{settings.live.start_wait:g} s (live.start_wait)"
            )
        time.sleep(settings.live.poll)


# What a stopped live attempt leaves its job as, by abandon()'s answer.
_AFTER = {
    "wait": (JobState.HELD, "it runs after the recording's finish hook"),
    "hold": (JobState.HELD, "held, as the finish hook's policy says"),
    "cancel": (JobState.CANCELLED, "the recording is skipped (a failed recording)"),
    "queue": (JobState.QUEUED, "published again as an ordinary job"),
}


def stop_live(
    app: Celery,
    settings: Settings,
    registry: Registry,
    job: Job,
    attempt_id: str,
    error: KamadoError,
) -> dict[str, Any]:
    """End a live attempt that could not finish, and send the job on as an ordinary one."""
    reason = f"live attempt stopped: {error}"
    then = abandon(registry, job.id, str(error))
    state, after = _AFTER.get(then, _AFTER["queue"])
    ended = registry.finish(job.id, attempt_id, state, error=reason, kind="live")
    if ended and state is JobState.QUEUED:
        publish(app, job, get_profile(job.profile, settings.profiles).queue)
    log.warning("job %s: %s; %s", job.id, reason, after)
    return {"job_id": job.id, "skipped": reason, "live": then}
