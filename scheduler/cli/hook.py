"""`kamado hook epgstation|chinachu|edcb`: a finished recording into the queue, fast.

``kamado hook epgstation --start`` (EPGStation's recordingStartCommand) submits a live
job instead: a fast enough worker encodes the recording while it is recorded
(:mod:`scheduler.live`); the finish hook for the same recording then tells it the file
is complete. Chinachu and EDCB have no start command kamado relies on.

By default a hook validates its input, spools it and hands delivery to a detached
process (:mod:`scheduler.hooks.quick`, which `kamado` runs before loading this module).
``--wait`` delivers in the hook's own process and reports the job id and outcome.
Recorders discard a hook's output (EPGStation) or never read it (Chinachu), so each run
also appends one line to ``<state_dir>/logs/hooks.log``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scheduler.hooks.log import log_line
from scheduler.hooks.quick import HookArgs, accept
from worker.cli.common import ConfigOption, JsonOption, console, fail, print_json, settings_or_exit
from worker.errors import BadInputError, KamadoError

if TYPE_CHECKING:
    from scheduler.recorders import HookInput

app = typer.Typer(
    help="Recorder hooks: submit a finished recording (spooled, then delivered at once).",
    no_args_is_help=True,
)

WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="deliver now in this process and report the job (slower; spools if the "
        "broker is away)",
    ),
]


def _wait(config: Path | None, origin: str, parse: Callable[[], HookInput], as_json: bool) -> None:
    from scheduler.delivery.direct import run_hook

    settings = settings_or_exit(config)
    try:
        data = parse()
        outcome = run_hook(settings, origin, data, cwd=Path.cwd())
    except KamadoError as e:
        log_line(settings.state_dir, f"{origin}: error: {e}")
        fail(e)
    log_line(
        settings.state_dir,
        f"{origin}: {outcome.action} {outcome.job_id or ''} {data.path!r} {outcome.detail}",
    )
    if as_json:
        print_json({"action": outcome.action, "id": outcome.job_id, "detail": outcome.detail})
    else:
        console.print(
            f"{outcome.action} {outcome.job_id or ''} {outcome.detail}".rstrip(), markup=False
        )


def _quick(args: HookArgs) -> None:
    code = accept(args)
    if code:
        raise typer.Exit(code)


@app.command("epgstation")
def epgstation(
    failed: Annotated[bool, typer.Option("--failed", help="run as recordingFailedCommand")] = False,
    start: Annotated[
        bool,
        typer.Option(
            "--start",
            help="run as recordingStartCommand: encode the recording while it is recorded",
        ),
    ] = False,
    wait: WaitOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """EPGStation v2 recordingFinishCommand / recordingFailedCommand / recordingStartCommand
    (reads its environment)."""
    if start and failed:
        fail(
            BadInputError(
                "epgstation: --start (recordingStartCommand) and --failed "
                "(recordingFailedCommand) are different hooks: give one"
            )
        )
    if not wait:
        _quick(HookArgs("epgstation", failed=failed, config=config, as_json=as_json, start=start))
        return
    from scheduler.recorders import epgstation_input

    env = dict(os.environ)
    _wait(config, "epgstation", lambda: epgstation_input(env, failed=failed, live=start), as_json)


@app.command("chinachu")
def chinachu(
    rec_path: Annotated[str, typer.Argument(help="the recorded file (argv[1] from Chinachu)")],
    program_json: Annotated[str, typer.Argument(help="the programme as JSON (argv[2])")],
    wait: WaitOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Chinachu recordedCommand: REC_PATH PROGRAM_JSON."""
    if not wait:
        _quick(HookArgs("chinachu", (rec_path, program_json), config=config, as_json=as_json))
        return
    from scheduler.recorders import chinachu_input

    _wait(config, "chinachu", lambda: chinachu_input(rec_path, program_json), as_json)


@app.command("edcb")
def edcb(
    wait: WaitOption = False, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """EDCB PostRecEnd.sh (reads FilePath, Title, ... from the environment)."""
    if not wait:
        _quick(HookArgs("edcb", config=config, as_json=as_json))
        return
    from scheduler.recorders import edcb_input

    env = dict(os.environ)
    _wait(config, "edcb", lambda: edcb_input(env), as_json)
