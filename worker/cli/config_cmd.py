"""`kamado config check`: the effective configuration, or every error in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from worker.cli.common import JsonOption, console, fail, print_json
from worker.config_file import find_config
from worker.errors import KamadoError
from worker.settings import load_settings, masked_dump

app = typer.Typer(help="Inspect kamado's configuration.", no_args_is_help=True)


@app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Argument(help="config file to check", dir_okay=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the effective config with secrets masked, or one error per bad field (exit 2)."""
    try:
        settings = load_settings(file)
        source = find_config(file)
    except KamadoError as e:
        fail(e)
    data = masked_dump(settings)
    if as_json:
        print_json({"source": str(source) if source else None, "settings": data})
        return
    console.print(f"# config file: {source or '(none; defaults and KAMADO_* only)'}", markup=False)
    console.print(json.dumps(data, indent=2, ensure_ascii=False), markup=False)
