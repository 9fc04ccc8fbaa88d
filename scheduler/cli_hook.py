"""`kamado hook epgstation|chinachu|edcb`: a finished recording into the queue, fast.

Recorders discard a hook's output (EPGStation) or never read it (Chinachu), so each run
also appends one line to ``<state_dir>/logs/hooks.log``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from worker.cli.common import ConfigOption, JsonOption, console, fail, print_json, settings_or_exit
from worker.errors import KamadoError

if TYPE_CHECKING:
    from scheduler.recorders import HookInput
    from worker.settings import Settings

app = typer.Typer(
    help="Recorder hooks: submit a finished recording (spooled while the broker is away).",
    no_args_is_help=True,
)


def log_line(settings: Settings, text: str) -> None:
    """Append one line to the hook log; a hook never fails over its log."""
    try:
        directory = settings.state_dir / "logs"
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        line = text.replace("\n", "\\n")
        with (directory / "hooks.log").open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"{stamp} {line}\n")
    except OSError:
        pass


def _run(settings: Settings, origin: str, parse: object, as_json: bool) -> None:
    from scheduler.hooks import run_hook

    assert callable(parse)
    try:
        data: HookInput = parse()
        outcome = run_hook(settings, origin, data, cwd=Path.cwd())
    except KamadoError as e:
        log_line(settings, f"{origin}: error: {e}")
        fail(e)
    log_line(
        settings,
        f"{origin}: {outcome.action} {outcome.job_id or ''} {data.path!r} {outcome.detail}",
    )
    if as_json:
        print_json({"action": outcome.action, "id": outcome.job_id, "detail": outcome.detail})
    else:
        console.print(
            f"{outcome.action} {outcome.job_id or ''} {outcome.detail}".rstrip(), markup=False
        )


@app.command("epgstation")
def epgstation(
    failed: Annotated[bool, typer.Option("--failed", help="run as recordingFailedCommand")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """EPGStation v2 recordingFinishCommand / recordingFailedCommand (reads its environment)."""
    from scheduler.recorders import parse_epgstation

    settings = settings_or_exit(config)
    env = dict(os.environ)
    _run(settings, "epgstation", lambda: parse_epgstation(env, failed=failed), as_json)


@app.command("chinachu")
def chinachu(
    rec_path: Annotated[str, typer.Argument(help="the recorded file (argv[1] from Chinachu)")],
    program_json: Annotated[str, typer.Argument(help="the programme as JSON (argv[2])")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Chinachu recordedCommand: REC_PATH PROGRAM_JSON."""
    from scheduler.recorders import parse_chinachu

    settings = settings_or_exit(config)
    _run(settings, "chinachu", lambda: parse_chinachu(rec_path, program_json), as_json)


@app.command("edcb")
def edcb(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """EDCB PostRecEnd.sh (reads FilePath, Title, ... from the environment)."""
    from scheduler.recorders import parse_edcb

    settings = settings_or_exit(config)
    env = dict(os.environ)
    _run(settings, "edcb", lambda: parse_edcb(env), as_json)
