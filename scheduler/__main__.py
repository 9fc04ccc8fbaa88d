"""`python -m scheduler ...`: the scheduler's commands alone.

The detached delivery a recorder hook starts runs `python -m scheduler spool flush`; a
hook itself takes the quick path (:mod:`scheduler.hook_quick`) here as from `kamado`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the scheduler-only command line."""
    from scheduler.hook_quick import main as quick

    code = quick(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    import typer
    from rich.text import Text

    from scheduler.cli import register
    from worker.cli.common import err_console
    from worker.errors import KamadoError

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
