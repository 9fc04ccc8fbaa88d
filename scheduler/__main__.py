"""`python -m scheduler ...`: the scheduler's commands alone, for the fastest hook start.

The full `kamado` CLI loads every role's commands; a recorder hook that must return in a
few hundred milliseconds can call this instead with the same arguments.
"""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from scheduler.cli import register
from worker.cli.common import err_console
from worker.errors import KamadoError


def main() -> None:
    """Run the scheduler-only command line."""
    app = typer.Typer(
        name="kamado", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
    )
    register(app)
    try:
        app(standalone_mode=True)
    except KamadoError as e:
        err_console.print(Text.assemble(("error: ", "red"), str(e)), soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
