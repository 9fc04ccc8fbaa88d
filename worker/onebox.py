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
from worker.celery_app import create_app
from worker.embedded import EmbeddedBroker
from worker.errors import BrokerError, KamadoError
from worker.jobs import ENCODE_TASK, EncodeResult, Job
from worker.profiles import get_profile
from worker.settings import Settings

WORKER_READY_TIMEOUT = 90.0
POLL = 0.1


@dataclass
class Outcome:
    """How one submitted job ended."""

    job: Job
    task_id: str
    result: EncodeResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the job ended verified."""
        return self.result is not None


@dataclass
class Tracked:
    """A job being waited for, with its latest progress."""

    job: Job
    task_id: str
    meta: dict[str, Any] = field(default_factory=dict)
    state: str = "PENDING"


ProgressCallback = Callable[[Tracked], None]


def submit(app: Celery, settings: Settings, job: Job) -> str:
    """Send one job to the queue of its profile's capability; returns the Celery task id."""
    profile = get_profile(job.profile, settings.profiles)
    task_id = f"{job.id}-{secrets.token_hex(4)}"
    try:
        app.send_task(
            ENCODE_TASK,
            args=[job.model_dump(mode="json")],
            task_id=task_id,
            queue=profile.queue,
            priority=job.priority,
        )
    except Exception as e:  # kombu/redis raise many types; all mean the broker is away
        raise BrokerError(f"cannot submit job {job.id} to the broker: {e}") from e
    return task_id


def wait_all(
    app: Celery,
    tracked: list[Tracked],
    on_update: ProgressCallback,
    *,
    timeout: float | None = None,
    alive: Callable[[], None] = lambda: None,
) -> list[Outcome]:
    """Poll the result backend until every job finished; report progress as it comes."""
    deadline = time.monotonic() + timeout if timeout else None
    outcomes: dict[str, Outcome] = {}
    while len(outcomes) < len(tracked):
        alive()
        for item in tracked:
            if item.task_id in outcomes:
                continue
            meta = app.backend.get_task_meta(item.task_id)
            state = str(meta.get("status", "PENDING"))
            item.state = state
            if state == "SUCCESS":
                value = EncodeResult.model_validate(meta.get("result"))
                outcomes[item.task_id] = Outcome(item.job, item.task_id, result=value)
            elif state in ("FAILURE", "REVOKED"):
                error = meta.get("result")
                reason = _exception_message(error) if error else state
                outcomes[item.task_id] = Outcome(item.job, item.task_id, error=reason)
            elif isinstance(meta.get("result"), dict):
                item.meta = meta["result"]
            on_update(item)
        if deadline and time.monotonic() > deadline:
            raise KamadoError(f"jobs did not finish within {timeout:g} s")
        if len(outcomes) < len(tracked):
            time.sleep(POLL)
    return [outcomes[t.task_id] for t in tracked]


def _exception_message(error: object) -> str:
    """The message of a task exception as the result backend returns it."""
    if isinstance(error, BaseException):
        return str(error)
    if isinstance(error, dict):
        message = error.get("exc_message")
        if isinstance(message, list | tuple) and message:
            return str(message[0])
        return str(message or error.get("exc_type") or error)
    return str(error)


class LocalWorker:
    """A real `kamado worker` process on the embedded broker."""

    def __init__(self, settings: Settings, broker_url: str, config: Path | None) -> None:
        self.settings = settings
        log_dir = settings.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / "worker.log"
        self.hostname = f"onebox-{secrets.token_hex(3)}@{os.uname().nodename}"
        argv = [
            sys.executable, "-m", "worker.cli.main", "worker",
            "--hostname", self.hostname,
            "--concurrency", "1",
        ]  # fmt: skip
        if config:
            argv += ["--config", str(config)]
        env = {
            "KAMADO_BROKER_URL": broker_url,
            "KAMADO_STATE_DIR": str(settings.state_dir),
            # Celery's soft shutdown on SIGTERM: running work is requeued, not lost.
            "REMAP_SIGTERM": "SIGQUIT",
        }
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            replies = app.control.ping(destination=[self.hostname], timeout=0.5)
            if replies:
                return
        raise KamadoError(f"the local worker did not come up within {timeout:g} s ({self.log})")

    def stop(self) -> None:
        """Warm-stop the worker (it is idle by now), then make sure it is gone."""
        self.daemon.stop(grace=20.0)


@dataclass
class Session:
    """A Celery app to submit to, and the local worker when kamado started one."""

    app: Celery
    worker: LocalWorker | None = None

    def check(self) -> None:
        """Raise if the session's local worker died."""
        if self.worker is not None:
            self.worker.check()


@contextlib.contextmanager
def session(
    settings: Settings,
    *,
    config: Path | None = None,
    force_embedded: bool = False,
    on_status: Callable[[str], None] = lambda _m: None,
) -> Iterator[Session]:
    """A Celery app on the configured broker, or on an embedded broker with a local worker."""
    if settings.broker_url is not None and not force_embedded:
        app = create_app(settings)
        try:
            yield Session(app)
        finally:
            app.close()
        return
    on_status("starting the embedded broker")
    with EmbeddedBroker(settings.state_dir) as broker:
        app = create_app(settings, broker.url)
        on_status("starting a local worker (proving encoders)")
        worker = LocalWorker(settings, broker.url, config)
        try:
            worker.wait_ready(app)
            yield Session(app, worker)
        finally:
            on_status("stopping the local worker")
            worker.stop()
            app.close()


def encode_files(
    box: Session,
    settings: Settings,
    jobs: list[Job],
    on_update: ProgressCallback,
    timeout: float | None = None,
) -> list[Outcome]:
    """Submit jobs and wait for all of them; never raises for a single failed job."""
    tracked = [Tracked(job, submit(box.app, settings, job)) for job in jobs]
    try:
        return wait_all(box.app, tracked, on_update, timeout=timeout, alive=box.check)
    except KamadoError:
        raise
    except Exception as e:
        raise BrokerError(f"lost the broker while waiting for jobs: {e}") from e
