"""Delivering submissions: route, record in the registry, publish (worker.submit), note.

A live job (a recorder's start hook) and the finish hook of one go through
:mod:`scheduler.live`. Celery is imported only when something is actually published, so
a hook that finds the broker away spools without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.cluster import Snapshot
from scheduler.delivery.hook_jobs import Skipped, action_of, detail_of, request_submission
from scheduler.errors import RecordingError
from scheduler.hooks.log import log_line
from scheduler.queues import BrokerState
from scheduler.routing import Cluster, initial_queue
from scheduler.spool.durable import Entry, Spool
from scheduler.submission import Submission
from worker.broker.address import broker_url
from worker.broker.registry import Registry, redis_client
from worker.errors import BrokerError, KamadoError
from worker.profiles import get_profile
from worker.settings.model import Settings

if TYPE_CHECKING:
    from celery import Celery

    from worker.submit import Submitted


class Deliverer:
    """A connection to the broker for submitting jobs (the Celery app is made on first use)."""

    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        self.settings = settings
        client = redis_client(broker_url(settings, embedded=False), socket_timeout=timeout)
        self.registry = Registry(
            client, lease_ttl=settings.jobs.lease_ttl, max_attempts=settings.jobs.max_attempts
        )
        self.state = BrokerState(self.registry)
        self.snapshot = Snapshot(self.registry, self.state, settings)
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        """The Celery app, created on first use."""
        if self._app is None:
            from worker.celery_app import create_app

            self._app = create_app(self.settings)
        return self._app

    def close(self) -> None:
        """Close the broker connections."""
        if self._app is not None:
            self._app.close()
        self.registry.close()

    def cluster(self) -> Cluster:
        """The cluster as routing sees it right now (queue contents not read)."""
        return self.snapshot.cluster(with_queues=False)

    def submit(
        self, sub: Submission, cluster: Cluster | None = None, *, note: bool = True
    ) -> Submitted:
        """Record and publish one submission to the queue routing picks for it; a live job
        goes to a fast enough worker, and a finish hook tells a live job of its recording."""
        from scheduler import live
        from worker.submit import submit_job

        profile = get_profile(sub.job.profile, self.settings.profiles)
        queue = initial_queue(profile, cluster or self.cluster())
        done: Submitted | None = None
        if sub.job.live:
            done = live.submit_live(self, sub, queue)
        elif sub.origin != "enqueue":  # a recorder's hook: the recording is complete
            done = live.finish_live(self, sub, queue)
        if done is None:
            done = submit_job(
                self.app, self.registry, self.settings, sub.job,
                queue=queue, force=sub.force, held=sub.held,
            )  # fmt: skip
        if note:
            self.state.note([sub])
        if sub.register_in == "epgstation":
            self.state.remember_registration(done.job.id)
        return done


@dataclass
class Drained:
    """What a spool drain did."""

    delivered: list[Submitted] = field(default_factory=list)
    quarantined: int = 0
    skipped: int = 0
    remaining: int = 0
    busy: bool = False
    error: str = ""
    unreadable: list[Entry] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def _quarantine(spool: Spool, entry: Entry, reason: str, state_dir: Path) -> None:
    spool.quarantine(entry, reason)
    if entry.request is not None:
        log_line(state_dir, f"{entry.request.origin}: set aside {entry.request.path!r}: {reason}")


def _denied(error: RecordingError) -> str:
    from worker.permissions import user_name

    return (
        f"recording {error}: left in the spool; the scheduler's user ({user_name()}) must "
        "read the recordings: make them group-readable by a group it is in (e.g. EPGStation's "
        "recorded directory group kamado, mode 2750) and it is delivered on the next pass"
    )


def report_unreadable(state_dir: Path, entries: list[Entry]) -> None:
    """Say in the hook log which entries this process cannot read, and how to fix them."""
    for entry in entries:
        log_line(state_dir, f"spool: {entry.path.name}: {entry.problem}")


def drain(spool: Spool, deliverer: Deliverer, *, blocking: bool = False) -> Drained:
    """Take the drain lock and deliver spooled entries oldest first (see :func:`drain_pass`)."""
    with spool.drain_lock(blocking=blocking) as got:
        if not got:
            return Drained(busy=True)
        return drain_pass(spool, deliverer)


def _submission(
    spool: Spool, entry: Entry, settings: Settings, result: Drained
) -> Submission | Skipped | None:
    """The entry's submission, Skipped (config submits nothing), or None after setting it
    aside or leaving it."""
    request, sub = entry.request, entry.submission
    state_dir = settings.state_dir
    if request is not None:
        try:
            return request_submission(settings, request)
        except RecordingError as e:
            if e.denied:  # there, but not for this user: fix the mode, it is delivered
                result.unreadable.append(replace(entry, problem=_denied(e), readable=False))
                return None
            _quarantine(spool, entry, str(e), state_dir)
            result.quarantined += 1
            return None
        except KamadoError as e:
            _quarantine(spool, entry, str(e), state_dir)
            result.quarantined += 1
            return None
    if sub is None:
        _quarantine(spool, entry, entry.problem, state_dir)
        result.quarantined += 1
    return sub


def drain_pass(spool: Spool, deliverer: Deliverer) -> Drained:
    """Deliver spooled entries oldest first; stop at the first broker error (lock held).

    A hook request becomes its submission here (the recording must still be there); one
    that cannot (the file is gone, the config no longer maps it) is set aside in ``bad/``
    with its reason, as is a file that is not a valid entry. A file this process may not
    read stays where it is and is reported in ``unreadable`` (another user may deliver
    it, or its mode be fixed). Outcomes of hook requests go to the hook log, which is
    what an operator reads for a recorder's recordings.
    """
    result = Drained()
    state_dir = deliverer.settings.state_dir
    entries = spool.entries()
    result.seen = {e.path.name for e in entries}
    result.unreadable = [e for e in entries if not e.readable]
    entries = [e for e in entries if e.readable]
    if not entries:
        return result
    try:
        cluster = deliverer.cluster()
    except BrokerError as e:
        result.error, result.remaining = str(e), len(entries)
        return result
    for index, entry in enumerate(entries):
        sub = _submission(spool, entry, deliverer.settings, result)
        if sub is None:
            continue
        request = entry.request
        try:
            if isinstance(sub, Skipped):
                _skip(spool, entry, deliverer, sub, result)
                continue
            done = deliverer.submit(sub, cluster)
        except BrokerError as e:
            result.error = str(e)
            result.remaining = len(entries) - index
            break
        except KamadoError as e:  # e.g. its profile was removed from the config since
            _quarantine(spool, entry, str(e), state_dir)
            result.quarantined += 1
            continue
        spool.remove(entry)
        result.delivered.append(done)
        if request is not None:
            log_line(state_dir, f"{request.origin}: {action_of(sub, done)} {sub.job.id} "
                     f"{request.path!r} {detail_of(done)}")  # fmt: skip
    return result


def _skip(spool: Spool, entry: Entry, deliverer: Deliverer, skipped: Skipped,
          result: Drained) -> None:  # fmt: skip
    """A request config submits nothing for: a live job of its recording is still told
    (raises BrokerError, the entry kept, when the broker is away)."""
    from scheduler.live import tell_skipped

    told = tell_skipped(deliverer, skipped.job_id) if skipped.job_id else None
    request = entry.request
    spool.remove(entry)
    result.skipped += 1
    if request is not None:
        said = f"; live job {told.job.id}: {told.outcome} ({detail_of(told)})" if told else ""
        line = f"{request.origin}: skipped {request.path!r}: {skipped.reason}{said}"
        log_line(deliverer.settings.state_dir, line)
