"""Helpers shared by every command: consoles, config loading, JSON output, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from worker.errors import KamadoError
from worker.settings.model import Settings, load_settings

__all__ = [
    "EXIT_FAILED",
    "ConfigOption",
    "JsonOption",
    "console",
    "err_console",
    "fail",
    "print_json",
    "settings_or_exit",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# No encoder backend works here: a service stops instead of restarting (the units say so).
EXIT_NOTHING_TO_SERVE = 3

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="config file (default: $KAMADO_CONFIG, ~/.config/kamado/kamado.toml, "
        "/etc/kamado/kamado.toml)",
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def settings_or_exit(config: Path | None) -> Settings:
    """Load settings; on a config error print every problem and exit 2."""
    try:
        return load_settings(config)
    except KamadoError as e:
        fail(e)


def fail(error: KamadoError) -> NoReturn:
    """Print one clear error line (or one per problem) and exit with its code."""
    problems = getattr(error, "problems", None)
    if problems and len(problems) > 1:
        err_console.print(Text.assemble(("error: ", "red"), "invalid configuration:"))
        for line in problems:
            err_console.print(f"  {line}", soft_wrap=True, markup=False)
    else:
        err_console.print(Text.assemble(("error: ", "red"), str(error)), soft_wrap=True)
    raise typer.Exit(error.exit_code)


def print_json(data: Any) -> None:
    """Write JSON to stdout, not through rich (scripts parse it)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()
