"""`kamado epgstation encode`: the command of an EPGStation encode preset.

EPGStation splits a preset's ``cmd`` on spaces, so every option here takes one word:
``cmd: /opt/kamado/bin/kamado epgstation encode --profile h264-auto``. Only progress
lines go to stdout (EPGStation parses them); everything else goes to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from worker.cli.common import ConfigOption, fail, settings_or_exit
from worker.errors import KamadoError

app = typer.Typer(
    help="EPGStation as a client: kamado behind its encode presets.", no_args_is_help=True
)


@app.command("encode")
def encode(
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", help="the kamado profile (default: the config's rules)"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Encode EPGStation's INPUT to its OUTPUT through kamado's queue (an encode preset's cmd).

    Progress goes to stdout as EPGStation reads it; exit 0 only when the verified output
    is at OUTPUT; SIGINT (EPGStation's cancel or timeout) cancels the job.
    """
    from scheduler.epgstation.lines import ProgressLines
    from scheduler.epgstation.preset import Stop, run_preset

    stop = Stop()
    stop.install()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="kamado: %(message)s")
    settings = settings_or_exit(config)
    try:
        code = run_preset(settings, dict(os.environ), profile=profile, lines=ProgressLines(),
                          stop=stop)  # fmt: skip
    except KamadoError as e:
        fail(e)
    raise typer.Exit(code)
