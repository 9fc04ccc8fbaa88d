"""`kamado spool list|flush`: submissions waiting on local disk for the broker."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from scheduler.hooks.log import log_line
from scheduler.spool.durable import Spool
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
from worker.settings.model import spool_dir

app = typer.Typer(
    help="Submissions waiting for the broker (written by hooks).", no_args_is_help=True
)


@app.command("list")
def list_cmd(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show spooled submissions, oldest first (an entry this user cannot read, with why)."""
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
                "kind": "submission" if sub else (None if entry.readable else "unreadable"),
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
    table = Table(title=Text(f"spool {spool.directory}"))
    for column in ("job", "origin", "recording", "profile", "spooled at"):
        table.add_column(column)
    for item in rows:
        table.add_row(
            (item["id"] or f"({item['kind'] or 'invalid'})")[:12],
            item["origin"] or "",
            Text(item["recorder_path"] or item["problem"] or ""),
            item["profile"] or "",
            item["created_at"] or "",
        )
    console.print(table)
    for item in rows:
        if item["kind"] == "unreadable":
            err_console.print(Text(f"warning: {item['file']}: {item['problem']}"),
                              soft_wrap=True)  # fmt: skip


LockFdOption = Annotated[
    int | None,
    typer.Option(
        "--lock-fd",
        hidden=True,
        help="internal: the drain lock a hook took and handed to this delivery",
    ),
]


def _lock(spool: Spool, lock_fd: int | None) -> tuple[int, bool]:
    """The drain lock's fd, and whether it was handed over by a hook (which then retries)."""
    from scheduler.spool import store as spool_store

    if lock_fd is not None and spool_store.holds_lock(lock_fd, spool.directory,
                                                      spool_store.DRAIN_LOCK):  # fmt: skip
        return lock_fd, True
    fd = spool_store.try_lock(spool.directory, spool_store.DRAIN_LOCK, blocking=True)
    assert fd is not None  # a blocking lock is always taken
    return fd, False


@app.command("flush")
def flush(
    config: ConfigOption = None, as_json: JsonOption = False, lock_fd: LockFdOption = None
) -> None:
    """Deliver every spooled submission now, oldest first; exit 1 if the broker is away."""
    from scheduler.delivery.deliverer import Deliverer
    from scheduler.delivery.locked import deliver

    settings = settings_or_exit(config)
    spool = Spool(spool_dir(settings))
    try:
        deliverer = Deliverer(settings)
        try:
            fd, handed = _lock(spool, lock_fd)
            retry = settings.scheduler.delivery_retry if handed else 0.0
            result = deliver(spool, deliverer, fd, retry_for=retry)
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
        "unreadable": [{"file": e.path.name, "problem": e.problem} for e in result.unreadable],
        "error": result.error or None,
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"delivered {len(result.delivered)}, skipped {result.skipped}, set aside "
            f"{result.quarantined} (see the spool's bad/ directory), {result.remaining} still "
            f"waiting, {len(result.unreadable)} unreadable"
        )
    for entry in result.unreadable:
        err_console.print(f"warning: {entry.path.name}: {entry.problem}", markup=False,
                          soft_wrap=True)  # fmt: skip
    if result.error:
        log_line(
            settings.state_dir,
            f"spool: {result.remaining} waiting, the broker is away: {result.error}",
        )
        err_console.print(f"[red]error:[/] the broker is away: {result.error}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
