"""The root of the `kamado` command line.

Each role contributes its commands through the ``kamado.cli`` entry-point group: an entry
point names a ``register(app)`` function. The root never imports another role's modules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import entry_points

import typer
from rich.text import Text

from worker.cli.common import err_console
from worker.errors import KamadoError

Register = Callable[[typer.Typer], None]


def build_app() -> typer.Typer:
    """The root typer app with every installed role's commands registered."""
    app = typer.Typer(
        name="kamado",
        help="Turn TV recordings into verified H.264 files on an Intel iGPU, through a queue.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for ep in sorted(entry_points(group="kamado.cli"), key=lambda e: e.name):
        register: Register = ep.load()
        register(app)
    return app


def main() -> None:
    """Console-script entry: run the app, turning KamadoError into a message and exit code."""
    app = build_app()
    try:
        app(standalone_mode=True)
    except KamadoError as e:
        err_console.print(Text.assemble(("error: ", "red"), str(e)), soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
