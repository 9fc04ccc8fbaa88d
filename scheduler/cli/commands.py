"""The scheduler role's commands: hooks, spool, enqueue, status and control, the service.

Command modules import only typer and the shared CLI helpers at the top; everything
heavier (Redis, Celery) is imported when a command runs, so `kamado hook` stays fast.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the scheduler role's commands to the root app."""
    from scheduler.cli.enqueue import enqueue
    from scheduler.cli.epgstation import app as epgstation_app
    from scheduler.cli.hook import app as hook_app
    from scheduler.cli.jobs import cancel, retry, status, watch, workers_cmd
    from scheduler.cli.service import app as service_app
    from scheduler.cli.spool import app as spool_app

    app.add_typer(hook_app, name="hook")
    app.add_typer(spool_app, name="spool")
    app.add_typer(epgstation_app, name="epgstation")
    app.add_typer(service_app, name="scheduler")
    app.command("enqueue")(enqueue)
    app.command("status")(status)
    app.command("watch")(watch)
    app.command("cancel")(cancel)
    app.command("retry")(retry)
    app.command("workers")(workers_cmd)
