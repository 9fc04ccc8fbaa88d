"""`kamado guest probe|run`: prove the backends inside the VM, then serve the proven queues."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from guest_agent.probe import cached
from guest_agent.tables import backends_table, environment_table
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
    name="guest",
    help="The guest agent inside the passthrough VM: prove the encoders, serve their queues.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    """Add `kamado guest` to the root app."""
    root.add_typer(app, name="guest")


@app.command("probe")
def probe_cmd(
    config: ConfigOption = None,
    json_out: JsonOption = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="probe again instead of showing the cached result")
    ] = False,
) -> None:
    """Show which encoder backends work here: render nodes, driver, a real encode per backend."""
    settings = settings_or_exit(config)
    try:
        probe = cached(settings, refresh=refresh)
    except KamadoError as e:
        fail(e)
    if json_out:
        print_json(probe.as_json())
    else:
        console.print(environment_table(probe))
        console.print(backends_table(probe.report))
        # The table wraps long reasons; ffmpeg's words also get a line each, unbroken.
        for backend, item in probe.backends.items():
            if item.reason:
                console.print(Text(f"{backend.value}: {item.reason}"), soft_wrap=True)
        for hint in probe.hints:
            console.print(Text.assemble(("hint: ", "yellow"), hint), soft_wrap=True)
    if not probe.proven:
        if not json_out:
            err_console.print("[red]error:[/] no encoder backend works on this machine")
        raise typer.Exit(EXIT_FAILED)


@app.command("run")
def run_cmd(
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=16, help="parallel encodes")
    ] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-n")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Probe, then run the worker on the queues the probe proved, guarding the GPU."""
    from guest_agent.run import run_guest

    settings = settings_or_exit(config)
    run_guest(settings, concurrency=concurrency, hostname=hostname, loglevel=loglevel)
