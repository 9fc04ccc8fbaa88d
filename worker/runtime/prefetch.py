"""Prefetch in the worker: while one job encodes, pull the next waiting job's source.

Each pool process keeps one :class:`~worker.staging.api.Prefetcher`, made on first use and
closed when the process shuts down. Once an attempt's source is staged (its encode is
about to start), a thread peeks the message a worker on these queues would take next
and starts pulling that job's source if it is remote; when that job's attempt runs in
this process, it takes the prefetched copy. A copy whose job ran elsewhere is removed
when the next attempt here starts, or when this process has stayed idle for a while and
the job no longer waits in the queues.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from worker.broker.registry import Registry
from worker.encode.probe_ahead import warm
from worker.errors import KamadoError
from worker.jobs import ENCODE_TASK, Job
from worker.profiles import get_profile
from worker.settings.model import Settings
from worker.staging.api import Prefetcher, StagedSource, resolve, stage_in

log = logging.getLogger("kamado.prefetch")

IDLE_SWEEP = 15.0  # seconds an idle process keeps a copy nobody has taken yet


def job_of_message(message: str) -> Job | None:
    """The Job a kombu Redis message of kamado's encode task carries, or None."""
    try:
        envelope = json.loads(message)
        if envelope["headers"]["task"] != ENCODE_TASK:
            return None
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body).decode("utf-8")
        args = json.loads(body)[0]  # Celery protocol 2: [args, kwargs, embed]
        return Job.from_payload(args[0])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, KamadoError):
        return None


def consumed_queues(app: Celery, settings: Settings) -> list[str]:
    """The queues this worker consumes (its --queues), else the configured ones."""
    chosen = list(app.amqp.queues.consume_from or {})
    return chosen or list(settings.worker.queues)


class NextPrefetch:
    """Stages each attempt's source through this process's Prefetcher and feeds it the next."""

    def __init__(
        self,
        settings: Settings,
        registry: Callable[[], Registry],
        queues: Callable[[], list[str]],
        *,
        idle_sweep: float = IDLE_SWEEP,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._queues = queues
        self._idle_sweep = idle_sweep
        self._prefetcher: Prefetcher | None = None
        self._pid = 0
        self._waiting: dict[str, str] = {}  # prefetched URI -> its job id
        self._attempts = 0  # attempts started here; an idle sweep compares it
        # Held while the pending copies change hands, so a sweep never removes a copy
        # an attempt is about to take.
        self._lock = threading.Lock()

    def _current(self) -> Prefetcher:
        if self._prefetcher is None or self._pid != os.getpid():
            # A forked pool child starts its own; the parent's threads are not here.
            self._prefetcher = Prefetcher(self.settings.staging)
            self._pid = os.getpid()
            self._waiting = {}
        return self._prefetcher

    @contextmanager
    def stage_in(self, uri: str) -> Iterator[StagedSource]:
        """The source of ``uri`` (the prefetched copy if there is one); then prefetch the next."""
        staging = self.settings.staging
        if not staging.prefetch:
            with stage_in(staging, uri, stream=False) as source:
                yield source
            return
        with self._lock:
            self._attempts += 1
            prefetcher = self._current()
            for stale in [u for u in prefetcher.pending() if u != uri]:
                log.info("dropping the copy prefetched for job %s", self._waiting.get(stale))
                self._waiting.pop(stale, None)
                prefetcher.cancel(stale)
            if self._waiting.pop(uri, None) is not None:
                log.info("using the prefetched copy of %s", uri)
        with prefetcher.stage_in(uri, stream=False) as source:
            peek = threading.Thread(
                target=self._prefetch_next, args=(uri,), name="kamado-peek", daemon=True
            )
            peek.start()
            try:
                yield source
            finally:
                self._schedule_sweep()

    def _prefetch_next(self, current: str) -> None:
        with self._lock:
            try:
                message = self._registry().peek_next(self._queues())
            except KamadoError as e:
                log.warning("cannot look at the next job to prefetch its source: %s", e)
                return
            job = job_of_message(message) if message else None
            # The same recording under another profile: its copy is the one in use.
            if job is None or job.source == current or job.live:  # a live one is still growing
                return
            if self._probe_ahead(job):
                return
            prefetcher = self._current()
            if prefetcher.prefetch(job.source):
                self._waiting[job.source] = job.id
                log.info("prefetching the source of job %s: %s", job.id, job.source)

    def _probe_ahead(self, job: Job) -> bool:
        """For a local source: probe it while this job encodes (True); a remote one is
        prefetched instead (False)."""
        try:
            target = resolve(self.settings.staging, job.source)
            service_id = get_profile(job.profile, self.settings.profiles).service_id
        except KamadoError:
            return True  # its own attempt reports what is wrong
        if target.kind != "local":
            return False
        thread = threading.Thread(
            target=warm,
            args=(self.settings.encode.ffprobe, Path(target.path), service_id),
            name="kamado-probe-ahead",
            daemon=True,
        )
        thread.start()
        return True

    def _schedule_sweep(self, seen: int | None = None) -> None:
        if self._idle_sweep <= 0:
            return
        seen = self._attempts if seen is None else seen
        timer = threading.Timer(self._idle_sweep, self._sweep, args=(seen,))
        timer.daemon = True
        timer.start()

    def _sweep(self, seen: int) -> None:
        with self._lock:
            if self._attempts != seen or not self._waiting or self._pid != os.getpid():
                return
            try:
                waiting = self._registry().jobs_with_messages(self._queues())
            except KamadoError as e:
                log.warning("cannot check whether prefetched jobs still wait: %s", e)
                return
            prefetcher = self._current()
            for uri, job_id in list(self._waiting.items()):
                if job_id not in waiting:
                    log.info("job %s ran elsewhere; removing its prefetched copy", job_id)
                    del self._waiting[uri]
                    prefetcher.cancel(uri)
        if self._waiting:
            self._schedule_sweep(seen)

    def pending(self) -> dict[str, str]:
        """Prefetched (or prefetching) sources of this process and their job ids."""
        with self._lock:
            return dict(self._waiting)

    def close(self) -> None:
        """Stop every prefetch of this process and remove the copies nobody took."""
        with self._lock:
            if self._prefetcher is not None and self._pid == os.getpid():
                self._prefetcher.close()
            self._prefetcher = None
            self._waiting = {}
