"""The worker service: a Celery worker with kamado's app, heartbeat, watchdog and hooks.

`kamado worker` (worker/cli/worker_cmd.py) and the guest agent (guest_agent/run.py) both
run it: :func:`run_worker` blocks in Celery's worker until it stops; a
:class:`HeartbeatHook` publishes what the worker serves while it runs.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any, Protocol

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from worker.backends.capabilities import cached_probe
from worker.broker.heartbeat import BackendProblem, BackendSpeed, WorkerHeartbeat
from worker.broker.presence import HeartbeatPublisher, current_job, speeds
from worker.broker.registry import Registry
from worker.captions import CaptionSupport, caption_support
from worker.runtime.pool_guard import refuse_pool_resize
from worker.runtime.tasks import register_tasks
from worker.runtime.watchdog import ConsumerWatchdog
from worker.settings.model import Settings

__all__ = ["HeartbeatHook", "WorkerHook", "proven_fps", "run_worker", "worker_argv"]


def worker_argv(
    settings: Settings,
    queues: list[str],
    *,
    concurrency: int | None = None,
    hostname: str | None = None,
    loglevel: str = "INFO",
) -> list[str]:
    """The Celery worker argv kamado runs: prefork, events on, no gossip or mingle."""
    argv = [
        "worker",
        "--queues", ",".join(queues),
        "--concurrency", str(concurrency or settings.worker.concurrency),
        "--pool", "prefork",
        "--loglevel", loglevel,
        "--events",
        "--without-gossip",
        "--without-mingle",
    ]  # fmt: skip
    name = hostname or settings.worker.hostname
    if name:
        argv += ["--hostname", name]
    return argv


def run_worker(
    app: Celery,
    settings: Settings,
    queues: list[str],
    *,
    heartbeat: HeartbeatHook,
    concurrency: int | None = None,
    hostname: str | None = None,
    loglevel: str = "INFO",
    hooks: Sequence[WorkerHook] = (),
) -> None:
    """Run the Celery worker in this process until it stops, with its heartbeat and hooks."""
    worker_ready.connect(heartbeat.start, weak=False)
    worker_shutdown.connect(heartbeat.stop, weak=False)
    # The queues it watches are those the heartbeat advertises: the guest's guard drops
    # encode.gpu there when it stops consuming it on purpose.
    watchdog = ConsumerWatchdog(settings, str(app.conf.broker_url), lambda: list(heartbeat.queues))
    for hook in (watchdog, *hooks):
        worker_ready.connect(hook.start, weak=False)
        worker_shutdown.connect(hook.stop, weak=False)
    register_tasks(app, settings)  # only a worker runs them: producers send by name
    refuse_pool_resize()
    app.worker_main(
        worker_argv(settings, queues, concurrency=concurrency, hostname=hostname, loglevel=loglevel)
    )


class WorkerHook(Protocol):
    """Something started when the worker is ready and stopped at its shutdown."""

    def start(self, sender: Any = None, **_: Any) -> None:
        """worker_ready: the worker consumes; ``sender`` is its consumer."""

    def stop(self, **_: Any) -> None:
        """worker_shutdown: release what start took."""


def proven_fps(app: Celery, settings: Settings) -> dict[str, float | None]:
    """The backends this worker will use, with the probe's speed where known."""
    if settings.worker.backends != "auto":
        return {b: None for b in settings.worker.backends}
    report = cached_probe(settings)
    return {b.value: report.backends[b].fps for b in report.proven}


class HeartbeatHook:
    """Starts the heartbeat when the Celery worker is ready and stops it at shutdown."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        queues: list[str],
        backends: dict[str, float | None],
        *,
        interval: float = 5.0,
    ) -> None:
        # queues, backends and problems are read at every beat: an owner (the guest
        # agent) may replace them while the worker runs.
        self.settings = settings
        self.url = url
        self.queues = queues
        self.backends = backends
        self.problems: list[BackendProblem] = []
        self.captions: CaptionSupport | None = None  # asked of ffmpeg at start when unset
        self.interval = interval
        self.publisher: HeartbeatPublisher | None = None

    def start(self, sender: Any = None, **_: Any) -> None:
        """worker_ready: begin publishing under the worker's real hostname."""
        hostname = str(getattr(sender, "hostname", "") or socket.gethostname())
        registry = Registry.connect(self.url, lease_ttl=self.settings.jobs.lease_ttl)
        if self.captions is None:
            self.captions = caption_support(self.settings.encode.ffmpeg)

        def make() -> WorkerHeartbeat:
            measured = speeds(registry, hostname)
            return WorkerHeartbeat(
                hostname=hostname,
                queues=self.queues,
                backends=[
                    measured.get(b) or BackendSpeed(backend=b, fps=fps)
                    for b, fps in self.backends.items()
                ],
                current_job=current_job(registry, hostname),
                problems=self.problems,
                captions=self.captions,
            )

        self.publisher = HeartbeatPublisher(registry, make, interval=self.interval)
        self.publisher.start()

    def stop(self, **_: Any) -> None:
        """worker_shutdown: remove the heartbeat."""
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher.registry.close()
