"""`kamado locations check`: reachability, host keys, permissions and space of every location."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from worker.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    print_json,
    settings_or_exit,
)
from worker.staging.check import CheckResult, check_all

app = typer.Typer(help="Staging locations (local mounts and SFTP hosts).", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the `locations` command group to the root app."""
    root.add_typer(app, name="locations")


@app.command("check")
def check(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check scratch and every configured location; exit 1 if any check fails."""
    settings = settings_or_exit(config)
    results = check_all(settings.staging)
    failed = [r for r in results if not r.ok]
    if as_json:
        print_json(
            {
                "ok": not failed,
                "locations": sorted({r.location for r in results}),
                "results": [r.as_dict() for r in results],
            }
        )
    else:
        _print_table(results)
        if not settings.staging.locations:
            console.print(
                "no [staging.locations] configured; only scratch was checked", markup=False
            )
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _print_table(results: list[CheckResult]) -> None:
    table = Table(show_lines=False)
    for column in ("location", "check", "result", "detail / fix"):
        table.add_column(column, overflow="fold")
    for result in results:
        mark = Text("ok", "green") if result.ok else Text("FAIL", "red")
        detail = result.detail if result.ok else f"{result.detail}\nfix: {result.fix}"
        table.add_row(result.location, result.check, mark, Text(detail))
    console.print(table)
