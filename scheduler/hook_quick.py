"""`kamado hook epgstation|chinachu|edcb` on its quick path: validate, spool, hand off.

Recorders run their hooks one at a time, so a hook must return at once. This path loads
pydantic and nothing heavier (no typer, no Celery, no settings models, no Redis client):

1. the config's few values the hook needs (:mod:`scheduler.hook_config`, validated in
   full when the config changed),
2. the recorder's input, validated (:mod:`scheduler.recorder_input`), and the recording
   checked (a readable, non-empty file whose name is UTF-8),
3. the request written to the durable spool (fsync'd, renamed into place),
4. delivery handed to a detached `python -m scheduler spool flush` (which drains the
   whole spool, oldest first, and logs each outcome to ``hooks.log``), unless a
   scheduler service on this machine holds the spool and delivers it itself.

Bad input exits 2 with one line naming the variable or file and nothing spooled. The
full command line (typer) handles ``--help``, ``--wait`` and anything this parser does
not know, so both routes accept the same arguments.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NamedTuple, cast

from scheduler import spool_store
from scheduler.hook_log import log_line
from scheduler.paths import absolute, check_recording, require_utf8
from scheduler.recorder_input import (
    Origin,
    hook_request,
    read_chinachu,
    read_edcb,
    read_epgstation,
)
from worker.errors import ConfigError, KamadoError

ARGUMENTS: dict[str, int] = {"epgstation": 0, "chinachu": 2, "edcb": 0}
FLUSH_LOG = "spool-flush.log"


class HookArgs(NamedTuple):
    """The hook's command line, as the quick path understands it."""

    origin: Origin
    arguments: tuple[str, ...] = ()
    failed: bool = False
    config: Path | None = None
    as_json: bool = False


def parse_args(argv: list[str]) -> HookArgs | None:
    """``hook RECORDER [ARGS] [--failed] [--config FILE] [--json]``, else None."""
    if len(argv) < 2 or argv[0] != "hook" or argv[1] not in ARGUMENTS:
        return None
    origin = cast(Origin, argv[1])
    arguments: list[str] = []
    config: Path | None = None
    failed = as_json = False
    rest = iter(argv[2:])
    for arg in rest:
        if arg in ("--config", "-c"):
            value = next(rest, None)
            if value is None:
                return None
            config = Path(value)
        elif arg.startswith("--config="):
            config = Path(arg.split("=", 1)[1])
        elif arg == "--json":
            as_json = True
        elif arg == "--failed" and origin == "epgstation":
            failed = True
        elif arg.startswith("-") and arg != "-":
            return None  # --help, --wait or a mistake: the full command line answers
        else:
            arguments.append(arg)
    if len(arguments) != ARGUMENTS[origin]:
        return None
    return HookArgs(origin, tuple(arguments), failed, config, as_json)


def _recording_path(args: HookArgs, env: dict[str, str]) -> str:
    """Validate the recorder's input; the recording's path as the recorder gave it."""
    if args.origin == "epgstation":
        return read_epgstation(env)["RECPATH"]
    if args.origin == "edcb":
        return read_edcb(env)["FilePath"]
    rec_path, program_json = args.arguments
    read_chinachu(rec_path, program_json)
    return rec_path


def no_broker(spool_dir: Path) -> ConfigError:
    """The error of a hook that spooled its recording with no broker to deliver it to."""
    return ConfigError(
        "no broker configured (set broker_url or KAMADO_BROKER_URL); the recording was "
        f"spooled in {spool_dir}: run `kamado spool flush` once the broker is set"
    )


def _cwd() -> Path:
    try:
        return Path.cwd()
    except OSError:  # the recorder's directory was removed under it
        return Path("/")


def _error(error: KamadoError) -> int:
    sys.stderr.write(f"error: {error}\n")
    sys.stderr.flush()
    return error.exit_code


def _report(args: HookArgs, action: str, detail: str) -> None:
    if args.as_json:
        data = {"action": action, "id": None, "detail": detail}
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(f"{action} {detail}\n")
    sys.stdout.flush()


def start_delivery(config: Path | None, state_dir: Path) -> None:
    """Start a detached `spool flush` of this spool (its errors go to the logs directory)."""
    from worker.spawn import spawn_detached

    argv = [sys.executable, "-m", "scheduler", "spool", "flush"]
    if config is not None:
        argv += ["--config", str(config)]
    spawn_detached(argv, log=state_dir / "logs" / FLUSH_LOG)


def accept(args: HookArgs, env: dict[str, str] | None = None) -> int:
    """Validate and spool one recorder hook run, start its delivery; the exit code."""
    from scheduler.hook_config import hook_config

    env = dict(os.environ) if env is None else env
    try:
        config = hook_config(args.config)
    except KamadoError as e:
        return _error(e)
    origin = args.origin
    try:
        given = require_utf8(_recording_path(args, env))
        path = absolute(given, _cwd())
        check_recording(Path(path))
        request = hook_request(
            origin, env=env, args=list(args.arguments), path=path, failed=args.failed
        )
        spool_store.write_entry(config.spool_dir, origin, request.to_json())
    except KamadoError as e:
        log_line(config.state_dir, f"{origin}: error: {e}")
        return _error(e)
    if not config.broker:
        log_line(config.state_dir, f"{origin}: spooled {path!r}; no broker configured")
        return _error(no_broker(config.spool_dir))
    if spool_store.service_running(config.spool_dir):
        detail = "the scheduler service delivers it"
    else:
        try:
            start_delivery(Path(config.config) if config.config else None, config.state_dir)
            detail = "delivery started (its outcome goes to hooks.log)"
        except KamadoError as e:
            detail = f"spooled; delivery could not start ({e}): run `kamado spool flush`"
    log_line(config.state_dir, f"{origin}: spooled {path!r}: {detail}")
    _report(args, "spooled", detail)
    return 0


def main(argv: list[str]) -> int | None:
    """The quick path's entry (``kamado.cli.quick``); None hands argv to the full CLI."""
    args = parse_args(argv)
    if args is None:
        return None
    return accept(args)
