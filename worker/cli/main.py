"""The root of the `kamado` command line.

Each role contributes its commands through the ``kamado.cli`` entry-point group: an entry
point names a ``register(app)`` function. The root never imports another role's modules.
A command that must start faster than typer and the settings models allow (a recorder
hook) names a ``main(argv)`` in the ``kamado.cli.quick`` group: it runs first and may hand
the command back (by returning None) to the full command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

Register = Callable[["typer.Typer"], None]


def quick(argv: list[str]) -> int | None:
    """Run ``argv`` on its role's quick path when it has one; its exit code, else None."""
    first = argv[0] if argv else ""
    if not first or first.startswith("-"):
        return None
    from worker.cli.quick import load, quick_targets

    target = quick_targets().get(first)
    return load(target)(argv) if target else None


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The root typer app with the installed roles' commands registered.

    A command listed in the ``kamado.cli.commands`` group (command name → the register
    function that provides it) loads only that role's commands: a recorder hook must not
    pay for importing Celery, Flower, paramiko and libvirt bindings it never uses.
    """
    from importlib.metadata import entry_points

    import typer

    app = typer.Typer(
        name="kamado",
        help="Turn TV recordings into verified H.264 files on an Intel iGPU, through a queue.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    fast = {ep.name: ep for ep in entry_points(group="kamado.cli.commands")}
    if first in fast:
        chosen = [fast[first]]
    else:
        chosen = sorted(entry_points(group="kamado.cli"), key=lambda e: e.name)
    for ep in chosen:
        register: Register = ep.load()
        register(app)
    return app


def main() -> None:
    """Console-script entry: run the app, turning KamadoError into a message and exit code."""
    code = quick(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from rich.text import Text

    from worker.cli.common import err_console
    from worker.errors import KamadoError

    app = build_app(sys.argv[1:])
    try:
        app(standalone_mode=True)
    except KamadoError as e:
        err_console.print(Text.assemble(("error: ", "red"), str(e)), soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
