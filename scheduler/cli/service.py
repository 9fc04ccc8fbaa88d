"""`kamado scheduler run`: the routing policy, the reconciler and the spool drain, as a service."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from worker.cli.common import ConfigOption, fail, settings_or_exit
from worker.errors import KamadoError

app = typer.Typer(help="The scheduler service.", no_args_is_help=True)


@app.command("run")
def run(
    config: ConfigOption = None,
    loglevel: str = typer.Option("INFO", "--loglevel", "-l"),
) -> None:
    """Route waiting jobs, reconcile the registry and drain the spool until stopped."""
    from scheduler.delivery.deliverer import Deliverer
    from scheduler.rules import check_rules
    from scheduler.service import Service
    from scheduler.spool.durable import Spool
    from worker.settings.model import spool_dir

    settings = settings_or_exit(config)
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        check_rules(settings)
        from worker.admin.metrics import serve_metrics

        deliverer = Deliverer(settings)
        metrics = serve_metrics(settings) if settings.metrics.enabled else None
        try:
            Service(settings, deliverer, Spool(spool_dir(settings))).run(stop)
        finally:
            if metrics is not None:
                metrics.close()
            deliverer.close()
    except KamadoError as e:
        fail(e)
