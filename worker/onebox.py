"""The one-box pipeline: embedded broker, a local worker, submit jobs and wait for them.

``kamado demo`` and ``kamado encode`` use it. With a configured broker it only submits
and waits (workers run elsewhere); with none it starts the embedded broker and a real
Celery worker process (``kamado worker``) and stops both afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery

from worker import process
from worker.backends.proof_reuse import last_start
from worker.broker.embedded import EmbeddedBroker
from worker.broker.keys import UNACKED, worker_key
from worker.broker.reconcile import reconcile
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.errors import KamadoError
from worker.jobs import EncodeResult, Job, JobState
from worker.settings.model import Settings
from worker.spans import mark, span
from worker.submit import submit_job

WORKER_READY_TIMEOUT = 90.0
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


class LocalWorker:
    """A real `kamado worker` process on the embedded broker."""

    def __init__(
        self,
        settings: Settings,
        broker_url: str,
        config: Path | None,
        output_dir: Path | None = None,
        *,
        concurrency: int | None = None,
        reprobe: bool = False,
    ) -> None:
        self.settings = settings
        log_dir = settings.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / "worker.log"
        self.hostname = f"onebox-{secrets.token_hex(3)}@{os.uname().nodename}"
        argv = [
            sys.executable, "-m", "worker.cli.main", "worker",
            "--hostname", self.hostname,
            "--concurrency", str(concurrency or settings.worker.concurrency),
        ]  # fmt: skip
        if reprobe:
            argv.append("--reprobe")
        if config:
            argv += ["--config", str(config)]
        env = {
            "KAMADO_BROKER_URL": broker_url,
            "KAMADO_STATE_DIR": str(settings.state_dir),
            # Celery's soft shutdown on SIGTERM: running work is requeued, not lost.
            "REMAP_SIGTERM": "SIGQUIT",
        }
        if output_dir is not None:  # `kamado encode -o DIR`: this worker may write there
            env["KAMADO_ENCODE__OUTPUT_DIR"] = str(output_dir.expanduser().absolute())
        self.daemon = process.Daemon(argv, env=env, log=self.log)

    def check(self) -> None:
        """Raise if the worker process has died."""
        if not self.daemon.alive():
            raise KamadoError(
                f"the local worker exited ({self.daemon.returncode}); its log "
                f"{self.log} ends with:\n{self.daemon.log_tail(15)}"
            )

    def wait_ready(self, app: Celery, timeout: float = WORKER_READY_TIMEOUT) -> None:
        """Wait until the worker answers a ping over the broker."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.check()
            # A ping sent before the worker listens is lost and waits out its timeout: short
            # ones see a fresh worker sooner; after 10 s, longer ones allow a slow reply.
            wait = 0.1 if time.monotonic() - started < 10 else 0.5
            replies = app.control.ping(destination=[self.hostname], timeout=wait)
            if replies:
                return
        raise KamadoError(f"the local worker did not come up within {timeout:g} s ({self.log})")

    def wait_idle(self, app: Celery, timeout: float = 30.0) -> bool:
        """Wait until the worker runs no task; True once it said so, False on timeout.

        A Celery worker stopped while a request is active sleeps its whole
        worker_soft_shutdown_timeout (30 s) before going, however soon the task ends.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.daemon.alive():
            active = app.control.inspect(destination=[self.hostname], timeout=1.0).active()
            if active is not None and not active.get(self.hostname):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Warm-stop the worker, then make sure it is gone (the path for a busy worker)."""
        self.daemon.stop(grace=20.0)

    def drop(self, registry: Registry) -> None:
        """Kill the idle worker's process group at once and remove its heartbeat.

        Only for a worker with nothing left to lose: every job it was given is final in
        the registry and the broker holds no unacknowledged message (checked by
        :func:`quiescent`). Its warm shutdown (pool, event dispatcher, heartbeat, lease
        and watchdog threads) costs about two seconds and saves nothing then.
        """
        self.daemon.kill()
        registry.call("remove a heartbeat", registry.client.delete, worker_key(self.hostname))


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
    broker = EmbeddedBroker(settings.state_dir)
    broker.spawn()
    try:
        # The worker starts at once: its imports and probe need no broker, and it waits
        # for one that is not up yet, so the two start side by side.
        worker = LocalWorker(
            settings, broker.url, config, output_dir, concurrency=slots, reprobe=reprobe
        )
        try:
            with span("onebox", "session.broker_up"):
                broker.wait_up()
            app = create_app(settings, broker.url)
            try:
                registry = open_registry(settings, broker.url)
                try:
                    with span("onebox", "session.worker_ready"):
                        worker.wait_ready(app)
                    probe = last_start(settings) if settings.worker.backends == "auto" else None
                    if probe is not None:
                        on_status(f"encoder probe {'reused' if probe[0] else 'redone'}: {probe[1]}")
                    box = Session(app, registry, settings, worker)
                    yield box
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
    return wait_all(box.registry, tracked, on_update, timeout=timeout, tick=box.tick)
