"""Delivering submissions: route, record in the registry, publish (worker.submit), note.

Celery is imported only when something is actually published, so a hook that finds the
broker away spools without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scheduler.broker import BrokerState
from scheduler.cluster import Snapshot
from scheduler.routing import Cluster, initial_queue
from scheduler.spool import Spool
from scheduler.submission import Submission
from worker.errors import BrokerError, ConfigError, KamadoError
from worker.profiles import get_profile
from worker.registry import Registry, redis_client
from worker.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

    from worker.submit import Submitted


def broker_url(settings: Settings) -> str:
    """The configured broker URL, or a ConfigError saying how to set one."""
    if settings.broker_url is None:
        raise ConfigError(
            "no broker configured: set broker_url in the config file or KAMADO_BROKER_URL "
            "(the scheduler submits to a shared broker, not an embedded one)"
        )
    return settings.broker_url.get_secret_value()


class Deliverer:
    """A connection to the broker for submitting jobs (the Celery app is made on first use)."""

    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        self.settings = settings
        client = redis_client(broker_url(settings), socket_timeout=timeout)
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
        """Record and publish one submission to the queue routing picks for it."""
        from worker.submit import submit_job

        profile = get_profile(sub.job.profile, self.settings.profiles)
        queue = initial_queue(profile, cluster or self.cluster())
        done = submit_job(
            self.app, self.registry, self.settings, sub.job,
            queue=queue, force=sub.force, held=sub.held,
        )  # fmt: skip
        if note:
            self.state.note([sub])
        return done


@dataclass
class Drained:
    """What a spool drain did."""

    delivered: list[Submitted] = field(default_factory=list)
    quarantined: int = 0
    remaining: int = 0
    busy: bool = False
    error: str = ""


def drain(spool: Spool, deliverer: Deliverer, *, blocking: bool = False) -> Drained:
    """Deliver spooled submissions oldest first; stop at the first broker error."""
    result = Drained()
    with spool.drain_lock(blocking=blocking) as got:
        if not got:
            result.busy = True
            return result
        entries = spool.entries()
        if not entries:
            return result
        try:
            cluster = deliverer.cluster()
        except BrokerError as e:
            result.error, result.remaining = str(e), len(entries)
            return result
        for index, entry in enumerate(entries):
            if entry.submission is None:
                spool.quarantine(entry, entry.problem)
                result.quarantined += 1
                continue
            try:
                result.delivered.append(deliverer.submit(entry.submission, cluster))
            except BrokerError as e:
                result.error = str(e)
                result.remaining = len(entries) - index
                break
            except KamadoError as e:  # e.g. its profile was removed from the config since
                spool.quarantine(entry, str(e))
                result.quarantined += 1
                continue
            spool.remove(entry)
    return result
