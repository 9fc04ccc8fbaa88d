"""`kamado config check`: the effective configuration, or every error in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from worker.cli.common import EXIT_BAD_INPUT, JsonOption, console, err_console, fail, print_json
from worker.errors import KamadoError
from worker.settings.file import find_config, load_env_file
from worker.settings.model import load_settings, masked_dump

app = typer.Typer(help="Inspect kamado's configuration.", no_args_is_help=True)

EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        "--env-file",
        help="read KEY=VALUE lines first, as the units do (EnvironmentFile=), e.g. "
        "/etc/kamado/kamado.env; its values override this shell's",
        dir_okay=False,
    ),
]


@app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Argument(help="config file to check", dir_okay=False)
    ] = None,
    env_file: EnvFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the effective config with secrets masked, and every problem in it.

    Exit 2 for an invalid value, or for a valid one that fails at run time: an example
    password or host name, a missing SFTP key file, a path_map target naming no
    location. Warnings (what may fail on another box) are printed and exit 0.
    """
    from worker.settings.lint import lint

    try:
        env = load_env_file(env_file) if env_file is not None else None
        settings = load_settings(file)
        source = find_config(file)
    except KamadoError as e:
        fail(e)
    problems = lint(settings, env, str(env_file))
    data = masked_dump(settings)
    if as_json:
        print_json(
            {
                "source": str(source) if source else None,
                "env_file": str(env_file) if env_file else None,
                "settings": data,
                "problems": [
                    {"field": p.field, "severity": p.severity, "message": p.message, "fix": p.fix}
                    for p in problems
                ],
            }
        )
    else:
        console.print(
            f"# config file: {source or '(none; defaults and KAMADO_* only)'}", markup=False
        )
        if env_file is not None:
            console.print(f"# env file: {env_file}", markup=False)
        console.print(json.dumps(data, indent=2, ensure_ascii=False), markup=False)
        for problem in problems:
            err_console.print(Text(f"{problem.severity}: {problem.line()}"), soft_wrap=True)
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(EXIT_BAD_INPUT)
