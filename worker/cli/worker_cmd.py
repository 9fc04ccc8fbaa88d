"""`kamado worker`: a Celery worker with kamado's app and settings on chosen queues."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from worker.capabilities import ProbeReport, Status, cached_probe
from worker.celery_app import create_app
from worker.cli.common import ConfigOption, err_console, fail, settings_or_exit
from worker.errors import BadInputError, KamadoError
from worker.profiles import QUEUE_GPU


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
            item.reason,
        )
    return table


def worker(
    config: ConfigOption = None,
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="comma-separated queues to consume")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, max=16, help="parallel encodes")
    ] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-n")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Run a Celery worker that encodes jobs from the given queues."""
    settings = settings_or_exit(config)
    chosen = [q.strip() for q in (queues or ",".join(settings.worker.queues)).split(",")]
    if not all(chosen):
        fail(BadInputError(f"--queues {queues!r}: empty queue name"))
    try:
        app = create_app(settings)
        if settings.worker.backends == "auto":
            report = cached_probe(settings, refresh=True)
            err_console.print(probe_table(report))
            proven = report.proven
            if not proven:
                fail(KamadoError("no encoder backend works on this machine (see the table)"))
            app.conf.kamado_backends = [b.value for b in proven]
            if QUEUE_GPU in chosen and not any(b.hardware for b in proven):
                err_console.print(
                    f"[yellow]warning:[/] consuming {QUEUE_GPU} without a proven hardware "
                    "backend: hardware-only jobs will fail here with the reason"
                )
    except KamadoError as e:
        fail(e)
    argv = [
        "worker",
        "--queues", ",".join(chosen),
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
    app.worker_main(argv)
