"""The one-box pipeline: embedded broker, a local worker, submit jobs and wait for them.

``kamado demo`` and ``kamado encode`` use it. With a configured broker it only submits
and waits (workers run elsewhere); with none it starts the embedded broker and a real
Celery worker process (``kamado worker``) and stops both afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery

from worker.backends.proof_reuse import last_start
from worker.broker.embedded import EmbeddedBroker
from worker.broker.keys import UNACKED
from worker.broker.reconcile import reconcile
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.errors import KamadoError
from worker.jobs import EncodeResult, Job, JobState
from worker.onebox_early import LocalWorker, Wanted, take
from worker.settings.model import Settings
from worker.spans import mark, span
from worker.submit import submit_job

# A job's end wakes the waiter at once (Registry.endings); between ends it looks at the
# progress this often. Each look costs the CLI CPU that x264 wants while it runs.
POLL = 0.5


@dataclass
class Outcome:
    """How one submitted job ended."""

    job: Job
    state: JobState
    result: EncodeResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the job ended verified."""
        return self.state is JobState.DONE and self.result is not None


@dataclass
class Tracked:
    """A job being waited for, with its latest progress."""

    job: Job
    meta: dict[str, Any] = field(default_factory=dict)
    state: JobState = JobState.QUEUED


ProgressCallback = Callable[[Tracked], None]


def wait_all(
    registry: Registry,
    tracked: list[Tracked],
    on_update: ProgressCallback,
    *,
    timeout: float | None = None,
    tick: Callable[[], None] = lambda: None,
) -> list[Outcome]:
    """Poll the job registry until every job is final; report progress as it comes."""
    with registry.endings() as endings:
        return _wait_all(registry, tracked, on_update, timeout, tick, endings.wait)


def _wait_all(
    registry: Registry,
    tracked: list[Tracked],
    on_update: ProgressCallback,
    timeout: float | None,
    tick: Callable[[], None],
    pause: Callable[[float], object],
) -> list[Outcome]:
    deadline = time.monotonic() + timeout if timeout else None
    outcomes: dict[str, Outcome] = {}
    while len(outcomes) < len(tracked):
        tick()
        for item in tracked:
            if item.job.id in outcomes:
                continue
            record = registry.get(item.job.id)
            if record is None:
                raise KamadoError(f"job {item.job.id} vanished from the registry")
            item.state = record.state
            item.meta = record.progress.model_dump(mode="json") if record.progress else {}
            item.meta["state"] = record.state.value
            if record.state.final:
                result = (
                    EncodeResult.model_validate(record.result)
                    if record.state is JobState.DONE and record.result
                    else None
                )
                outcomes[item.job.id] = Outcome(item.job, record.state, result, record.error)
                mark(item.job.id, "client.seen_final")
            on_update(item)
        if deadline and time.monotonic() > deadline:
            raise KamadoError(f"jobs did not finish within {timeout:g} s")
        if len(outcomes) < len(tracked):
            pause(POLL)  # woken at once by a job's end (Registry.endings), else a poll
    return [outcomes[t.job.id] for t in tracked]


def quiescent(registry: Registry, job_ids: list[str], timeout: float = 2.0) -> bool:
    """True when every job is final and the broker holds no unacknowledged message.

    A late-acked task's ack follows its end by a moment, so this polls up to ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        records = [registry.get(job_id) for job_id in job_ids]
        final = all(r is not None and r.state.final for r in records)
        unacked = registry.call("count unacked", registry.client.hlen, UNACKED)
        if final and unacked == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


@dataclass
class Session:
    """A Celery app and registry to submit to, and the local worker kamado started."""

    app: Celery
    registry: Registry
    settings: Settings
    worker: LocalWorker | None = None
    _last_reconcile: float = 0.0
    submitted: list[str] = field(default_factory=list)  # job ids, for the quick stop
    on_status: Callable[[str], None] = lambda _m: None
    _ready: bool = False

    def ready(self) -> None:
        """Wait for the local worker (if any) to answer, once: jobs submitted before wait
        for it in the broker, so submitting first overlaps the two."""
        if self.worker is None or self._ready:
            return
        with span("onebox", "session.worker_ready"):
            self.worker.wait_ready(self.app, working=self._took_a_job)
        self._ready = True
        probe = last_start(self.settings) if self.settings.worker.backends == "auto" else None
        if probe is not None:
            self.on_status(f"encoder probe {'reused' if probe[0] else 'redone'}: {probe[1]}")

    def _took_a_job(self) -> bool:
        """True once a job submitted here left the queue (the local worker took it)."""
        for job_id in self.submitted:
            record = self.registry.get(job_id)
            if record is not None and record.state is not JobState.QUEUED:
                return True
        return False

    def tick(self) -> None:
        """While waiting: fail if the local worker died; on one box, run the reconciler."""
        if self.worker is None:
            return
        self.worker.check()
        interval = self.settings.jobs.reconcile_interval
        if time.monotonic() - self._last_reconcile >= interval:
            self._last_reconcile = time.monotonic()
            reconcile(self.app, self.registry, grace=self.settings.jobs.lease_ttl)


@contextlib.contextmanager
def session(
    settings: Settings,
    *,
    config: Path | None = None,
    force_embedded: bool = False,
    on_status: Callable[[str], None] = lambda _m: None,
    output_dir: Path | None = None,
    concurrency: int | None = None,
    reprobe: bool = False,
) -> Iterator[Session]:
    """A Celery app on the configured broker, or on an embedded broker with a local worker."""
    if settings.broker_url is not None and not force_embedded:
        app = create_app(settings)
        registry = open_registry(settings, str(app.conf.broker_url))
        try:
            yield Session(app, registry, settings)
        finally:
            registry.close()
            app.close()
        return
    slots = concurrency or settings.worker.concurrency
    on_status(f"starting the embedded broker and a local worker ({slots} slot(s))")
    wanted = Wanted(
        state_dir=settings.state_dir,
        concurrency=slots,
        config=config,
        output_dir=output_dir.expanduser().absolute() if output_dir is not None else None,
        reprobe=reprobe,
    )
    early = take(wanted)  # spawned by `kamado encode`'s quick path (worker/onebox_early.py)
    if early is not None:
        mark("onebox", "session.head_start")  # the pair the quick path spawned, adopted
        broker = early.broker
    else:
        broker = EmbeddedBroker(settings.state_dir)
        broker.spawn()
    try:
        # The worker starts at once: its imports and probe need no broker, and it waits
        # for one that is not up yet, so the two start side by side.
        worker = early.worker if early is not None else LocalWorker(wanted, broker.url)
        try:
            with span("onebox", "session.broker_up"):
                broker.wait_up()
            app = create_app(settings, broker.url)
            try:
                registry = open_registry(settings, broker.url)
                try:
                    box = Session(app, registry, settings, worker, on_status=on_status)
                    yield box
                    box.ready()  # a caller that submitted nothing still sees it come up
                    with span("onebox", "session.worker_idle"):
                        idle = worker.wait_idle(app) and quiescent(registry, box.submitted)
                    if idle:  # nothing running, nothing unacknowledged: nothing to lose
                        with span("onebox", "session.worker_drop"):
                            worker.drop(registry)
                finally:
                    registry.close()
            finally:
                app.close()
        finally:
            on_status("stopping the local worker")
            with span("onebox", "session.worker_stop"):
                worker.stop()  # a no-op after drop(); after Ctrl-C or an error, warm
    finally:
        with span("onebox", "session.broker_stop"):
            broker.stop()


def open_registry(settings: Settings, url: str) -> Registry:
    """The job registry on the session's broker."""
    return Registry.connect(
        url, lease_ttl=settings.jobs.lease_ttl, max_attempts=settings.jobs.max_attempts
    )


def encode_files(
    box: Session,
    jobs: list[Job],
    on_update: ProgressCallback,
    *,
    timeout: float | None = None,
    force: bool = False,
) -> list[Outcome]:
    """Submit jobs and wait for all of them; never raises for a single failed job.

    A job the registry already finished is run again when ``force`` is set, when it
    failed or was cancelled, or when its output has gone missing since.
    """
    tracked: list[Tracked] = []
    for job in jobs:
        if any(t.job.id == job.id for t in tracked):
            continue  # one recording named twice (a symlinked directory): one job
        known = box.registry.get(job.id)
        again = force or (
            known is not None
            and known.state.final
            and (known.state is not JobState.DONE or not Path(known.job.output).exists())
        )
        done = submit_job(box.app, box.registry, box.settings, job, force=again)
        tracked.append(Tracked(done.job))
        box.submitted.append(done.job.id)
    box.ready()
    return wait_all(box.registry, tracked, on_update, timeout=timeout, tick=box.tick)
