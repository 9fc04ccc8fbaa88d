"""`kamado flower`: Celery Flower on kamado's broker, with authentication required."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from worker.admin import flower
from worker.cli.common import ConfigOption, err_console, fail, settings_or_exit
from worker.errors import KamadoError


def flower_command(
    config: ConfigOption = None,
    address: Annotated[
        str | None, typer.Option("--address", help="interface to bind (default flower.address)")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="port to listen on (default flower.port)"),
    ] = None,
) -> None:
    """Run Celery Flower on kamado's broker (basic auth from config or KAMADO_FLOWER_BASIC_AUTH)."""
    settings = settings_or_exit(config)
    try:
        chosen = flower.plan(settings, address=address, port=port)
    except KamadoError as e:
        fail(e)
    options = chosen.options
    if chosen.unauthenticated:
        err_console.print(
            Text.assemble(
                ("warning: ", "yellow"),
                f"Flower runs without authentication on {options['address']} (one-box mode); "
                "its API stays off until basic_auth is set",
            )
        )
    err_console.print(
        f"Flower on http://{options['address']}:{options['port']}/"
        f"{options['url_prefix']}  (Ctrl-C stops it)",
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(flower.run(settings, chosen))


def register(app: typer.Typer) -> None:
    """Add `kamado flower` to the root app."""
    app.command("flower")(flower_command)
