"""`python -m scheduler ...`: the scheduler's commands alone.

The detached delivery a recorder hook starts runs `python -m scheduler spool flush
--lock-fd N`; it lowers its priority first, so the recorder and the hooks that end with it
(several tuners finish in the same second) get the CPU before the delivery's imports. A
hook itself takes the quick path (:mod:`scheduler.hooks.quick`) here as from `kamado`.
"""

from __future__ import annotations

import contextlib
import os
import sys

DELIVERY_NICE = 10


def main() -> None:
    """Run the scheduler-only command line."""
    from scheduler.hooks.quick import main as quick

    if "--lock-fd" in sys.argv[1:]:  # a hook's delivery: it must not slow the next hooks
        with contextlib.suppress(OSError):
            os.nice(DELIVERY_NICE)
    code = quick(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    import typer
    from rich.text import Text

    from scheduler.cli.commands import register
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
