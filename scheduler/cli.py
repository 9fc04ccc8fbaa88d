"""The scheduler role's commands: hooks, spool, enqueue, status and control, the service.

Command modules import only typer and the shared CLI helpers at the top; everything
heavier (Redis, Celery) is imported when a command runs, so `kamado hook` stays fast.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the scheduler role's commands to the root app."""
    from scheduler import cli_enqueue, cli_hook, cli_jobs, cli_service, cli_spool

    app.add_typer(cli_hook.app, name="hook")
    app.add_typer(cli_spool.app, name="spool")
    app.add_typer(cli_service.app, name="scheduler")
    app.command("enqueue")(cli_enqueue.enqueue)
    app.command("status")(cli_jobs.status)
    app.command("watch")(cli_jobs.watch)
    app.command("cancel")(cli_jobs.cancel)
    app.command("retry")(cli_jobs.retry)
    app.command("workers")(cli_jobs.workers_cmd)
