"""`kamado worker`: a Celery worker with kamado's app and settings on chosen queues."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from worker.backends.capabilities import ProbeReport, Status
from worker.backends.proof_reuse import probe_at_start
from worker.backends.view import CONF_KEY, backend_lines, problems_of
from worker.broker.heartbeat import BackendProblem
from worker.broker.registry import check_login
from worker.captions import describe_support
from worker.celery_app import create_app
from worker.cli.common import ConfigOption, err_console, fail, settings_or_exit
from worker.errors import BadInputError, KamadoError, NothingToServe
from worker.profiles import QUEUE_GPU
from worker.runtime.service import HeartbeatHook, proven_fps, run_worker


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
