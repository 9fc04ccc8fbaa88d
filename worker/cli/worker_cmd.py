"""`kamado worker`: a Celery worker with kamado's app and settings on chosen queues."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

import typer
from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from rich.table import Table
from rich.text import Text

from worker.backends.capabilities import ProbeReport, Status, cached_probe
from worker.backends.proof_reuse import probe_at_start
from worker.backends.view import CONF_KEY, backend_lines, problems_of
from worker.broker.celery_app import create_app
from worker.broker.heartbeat import BackendProblem, BackendSpeed, WorkerHeartbeat
from worker.broker.presence import HeartbeatPublisher, current_job, speeds
from worker.broker.registry import Registry, check_login
from worker.cli.common import ConfigOption, err_console, fail, settings_or_exit
from worker.encode.captions import CaptionSupport, caption_support, describe_support
from worker.errors import BadInputError, KamadoError, NothingToServe
from worker.profiles import QUEUE_GPU
from worker.runtime.pool_guard import refuse_pool_resize
from worker.runtime.watchdog import ConsumerWatchdog
from worker.settings.model import Settings


def probe_table(report: ProbeReport) -> Table:
    """The probe result as a table: backend, status, speed, reason."""
    table = Table(title="encoder backends on this machine")
    for column in ("backend", "status", "fps", "reason"):
        table.add_column(column)
    colours = {Status.PROVEN: "green", Status.FAILED: "red", Status.ABSENT: "yellow"}
    for backend, item in report.backends.items():
        table.add_row(
            backend.value,
            f"[{colours[item.status]}]{item.status.value}[/]",
            f"{item.fps:g}" if item.fps else "",
            Text(item.reason),  # ffmpeg's lines start with "[h264_qsv @ 0x...]": not markup
        )
    return table


def worker(
    config: ConfigOption = None,
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="comma-separated queues to consume")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=16, help="parallel encodes")
    ] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-n")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    reprobe: Annotated[
        bool, typer.Option("--reprobe", help="prove the backends again even if nothing changed")
    ] = False,
) -> None:
    """Run a Celery worker that encodes jobs from the given queues."""
    settings = settings_or_exit(config)
    chosen = [q.strip() for q in (queues or ",".join(settings.worker.queues)).split(",")]
    if not all(chosen):
        fail(BadInputError(f"--queues {queues!r}: empty queue name"))
    refused: list[BackendProblem] = []
    try:
        if settings.broker_url is not None:
            # A refused login never heals by itself: fail the start instead of retrying.
            check_login(settings.broker_url.get_secret_value())
        app = create_app(settings)
        if settings.worker.backends == "auto":
            start = probe_at_start(settings, reprobe=reprobe)
            report = start.report
            err_console.print(probe_table(report))
            err_console.print(Text(describe_support(report.captions)))
            err_console.print(start.describe(), markup=False, highlight=False)
            proven = report.proven
            if not proven:
                fail(NothingToServe("no encoder backend works on this machine (see the table)"))
            app.conf.kamado_backends = [b.value for b in proven]
            refused = problems_of(report)
            app.conf.kamado_probed_at = report.probed_at
            if QUEUE_GPU in chosen and not any(b.hardware for b in proven):
                err_console.print(
                    f"[yellow]warning:[/] consuming {QUEUE_GPU} without a proven hardware "
                    "backend: hardware-only jobs will fail here with the reason"
                )
    except KamadoError as e:
        fail(e)
    fps = proven_fps(app, settings)
    beat = HeartbeatHook(settings, str(app.conf.broker_url), chosen, fps)
    beat.problems = refused
    verb = "proven" if settings.worker.backends == "auto" else "configured (not probed)"
    app.conf[CONF_KEY] = backend_lines(fps, refused, verb)  # Flower's worker page, Config tab
    run_worker(
        app, settings, chosen, concurrency=concurrency, hostname=hostname, loglevel=loglevel,
        heartbeat=beat,
    )  # fmt: skip


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
