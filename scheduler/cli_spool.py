"""`kamado spool list|flush`: submissions waiting on local disk for the broker."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from scheduler.hook_log import log_line
from worker.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    settings_or_exit,
)
from worker.errors import KamadoError

app = typer.Typer(
    help="Submissions waiting for the broker (written by hooks).", no_args_is_help=True
)


@app.command("list")
def list_cmd(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show spooled submissions, oldest first."""
    from scheduler.spool import Spool, spool_dir

    settings = settings_or_exit(config)
    spool = Spool(spool_dir(settings))
    rows: list[dict[str, Any]] = []
    for entry in spool.entries():
        sub, request = entry.submission, entry.request
        if request is not None:
            rows.append(
                {
                    "file": entry.path.name, "kind": "hook", "id": None,
                    "origin": request.origin, "recorder_path": request.path, "source": None,
                    "profile": None, "priority": None, "held": None, "flags": [],
                    "created_at": request.received_at.isoformat(), "problem": None,
                }
            )  # fmt: skip
            continue
        rows.append(
            {
                "file": entry.path.name,
                "kind": "submission" if sub else None,
                "id": sub.job.id if sub else None,
                "origin": sub.origin if sub else None,
                "recorder_path": sub.recorder_path if sub else None,
                "source": sub.job.source if sub else None,
                "profile": sub.job.profile if sub else None,
                "priority": sub.job.priority if sub else None,
                "held": sub.held if sub else None,
                "flags": sub.flags if sub else [],
                "created_at": sub.created_at.isoformat() if sub else None,
                "problem": entry.problem or None,
            }
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"the spool ({spool.directory}) is empty")
        return
    table = Table(title=f"spool {spool.directory}")
    for column in ("job", "origin", "recording", "profile", "spooled at"):
        table.add_column(column)
    for item in rows:
        table.add_row(
            (item["id"] or ("(hook)" if item["kind"] == "hook" else "?"))[:12],
            item["origin"] or "",
            item["recorder_path"] or item["problem"] or "",
            item["profile"] or "",
            item["created_at"] or "",
        )
    console.print(table)


@app.command("flush")
def flush(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Deliver every spooled submission now, oldest first; exit 1 if the broker is away."""
    from scheduler.deliver import Deliverer, drain
    from scheduler.spool import Spool, spool_dir

    settings = settings_or_exit(config)
    spool = Spool(spool_dir(settings))
    try:
        deliverer = Deliverer(settings)
        try:
            result = drain(spool, deliverer, blocking=True)
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
    summary = {
        "delivered": [
            {"id": d.job.id, "outcome": d.outcome, "queue": d.queue} for d in result.delivered
        ],
        "quarantined": result.quarantined,
        "skipped": result.skipped,
        "remaining": result.remaining,
        "error": result.error or None,
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"delivered {len(result.delivered)}, skipped {result.skipped}, set aside "
            f"{result.quarantined} (see the spool's bad/ directory), {result.remaining} still "
            "waiting"
        )
    if result.error:
        log_line(
            settings.state_dir,
            f"spool: {result.remaining} waiting, the broker is away: {result.error}",
        )
        err_console.print(f"[red]error:[/] the broker is away: {result.error}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
