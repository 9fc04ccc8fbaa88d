"""`kamado hook epgstation|chinachu|edcb` on its quick path: validate, spool, hand off.

Recorders run their hooks one at a time, so a hook must return at once. This path loads
pydantic and nothing heavier (no typer, no Celery, no settings models, no Redis client):

1. the config's few values the hook needs (:mod:`scheduler.hooks.config`, validated in
   full when the config changed),
2. the recorder's input, validated (:mod:`scheduler.recorder_input`), and the recording
   checked (a readable, non-empty file whose name is UTF-8; with ``--start``, EPGStation's
   recordingStartCommand, only the name: the recording has just begun and may not be
   there yet),
3. the request written to the durable spool (fsync'd, renamed into place),
4. delivery: nothing to do when a scheduler service on this machine holds the spool
   (it delivers it), nor when a delivery is already running (it takes the entry, see
   :mod:`scheduler.delivery.locked`); otherwise the hook takes the spool's drain lock and
   hands it to a detached `python -m scheduler spool flush` it starts, which drains the
   whole spool, oldest first, and logs each outcome to ``hooks.log``. At most one
   delivery process runs per spool, however many hooks run at once.

Bad input exits 2 with one line naming the variable or file and nothing spooled; so
does any failed system call (a config, spool or lock the hook's user may not use), with
the fix. The full command line (typer) handles ``--help``, ``--wait`` and anything this
parser does not know, so both routes accept the same arguments.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from scheduler.hooks.log import log_line
from scheduler.paths import absolute, check_recording, check_started, require_utf8
from scheduler.recorder_input import (
    Origin,
    hook_request,
    validate_chinachu,
    validate_edcb,
    validate_epgstation,
)
from scheduler.spool import access as spool_access
from scheduler.spool import store as spool_store
from worker.errors import ConfigError, KamadoError

if TYPE_CHECKING:
    from scheduler.hooks.config import HookConfig

ARGUMENTS: dict[str, int] = {"epgstation": 0, "chinachu": 2, "edcb": 0}
FLUSH_LOG = "spool-flush.log"


class HookArgs(NamedTuple):
    """The hook's command line, as the quick path understands it."""

    origin: Origin
    arguments: tuple[str, ...] = ()
    failed: bool = False
    config: Path | None = None
    as_json: bool = False
    start: bool = False


def parse_args(argv: list[str]) -> HookArgs | None:
    """``hook RECORDER [ARGS] [--failed|--start] [--config FILE] [--json]``, else None
    (``--start`` with ``--failed`` too: the full command line refuses it, exit 2)."""
    if len(argv) < 2 or argv[0] != "hook" or argv[1] not in ARGUMENTS:
        return None
    origin = cast(Origin, argv[1])
    arguments: list[str] = []
    config: Path | None = None
    failed = as_json = start = False
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
        elif arg == "--start" and origin == "epgstation":
            start = True
        elif arg.startswith("-") and arg != "-":
            return None  # --help, --wait or a mistake: the full command line answers
        else:
            arguments.append(arg)
    if len(arguments) != ARGUMENTS[origin] or (start and failed):
        return None
    return HookArgs(origin, tuple(arguments), failed, config, as_json, start)


def _recording_path(args: HookArgs, env: dict[str, str]) -> str:
    """Validate the recorder's input; the recording's path as the recorder gave it."""
    if args.origin == "epgstation":
        return validate_epgstation(env)["RECPATH"]
    if args.origin == "edcb":
        return validate_edcb(env)["FilePath"]
    rec_path, program_json = args.arguments
    validate_chinachu(rec_path, program_json)
    return rec_path


def no_broker(spool_dir: Path) -> ConfigError:
    """The error of a hook that spooled its recording with no broker to deliver it to."""
    return ConfigError(
        "no broker configured for hooks and no scheduler service holds the spool: set "
        "broker_url in the config file hooks read (they do not read kamado.env) or start "
        f"the scheduler service; the recording was spooled in {spool_dir}: run `kamado "
        "spool flush` once the broker is set"
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


LOCK_FD = 3  # the drain lock's fd number in the delivery a hook starts


def _log_fd(state_dir: Path) -> int | None:
    """The delivery's stderr: the flush log, opened shared (None when it cannot be)."""
    try:
        spool_access.make_dir(state_dir / "logs")
        fd = spool_access.open_file(state_dir / "logs" / FLUSH_LOG, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return None
    return _high(fd)


def _high(fd: int) -> int:
    """``fd`` moved above the standard ones (a recorder may start a hook with them closed)."""
    if fd > LOCK_FD:
        return fd
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, LOCK_FD + 1)
    finally:
        os.close(fd)


def start_delivery(config: Path | None, state_dir: Path, lock_fd: int) -> None:
    """Start a detached `spool flush` holding the drain lock ``lock_fd`` (it inherits it)."""
    from worker.spawn import spawn_detached

    argv = [sys.executable, "-m", "scheduler", "spool", "flush"]
    if config is not None:
        argv += ["--config", str(config)]
    argv += ["--lock-fd", str(LOCK_FD)]
    log_fd = _log_fd(state_dir)
    inherit = {LOCK_FD: lock_fd} if log_fd is None else {2: log_fd, LOCK_FD: lock_fd}
    try:
        spawn_detached(argv, inherit=inherit)
    finally:
        if log_fd is not None:
            os.close(log_fd)


def hand_off(config: HookConfig) -> str:
    """Leave the spooled entry to the service or a running delivery, or start one; what."""
    if spool_store.service_running(config.spool_dir):
        return "the scheduler service delivers it"
    lock_fd = spool_store.try_lock(config.spool_dir, spool_store.DRAIN_LOCK)
    if lock_fd is None:  # its holder lists the spool again after it lets go
        return "a delivery already running takes it (its outcome goes to hooks.log)"
    lock_fd = _high(lock_fd)
    try:
        start_delivery(Path(config.config) if config.config else None, config.state_dir,
                       lock_fd)  # fmt: skip
    except KamadoError as e:
        return f"spooled; delivery could not start ({e}): run `kamado spool flush`"
    finally:
        os.close(lock_fd)  # the delivery holds the lock through its own copy
    return "delivery started (its outcome goes to hooks.log)"


def accept(args: HookArgs, env: dict[str, str] | None = None) -> int:
    """Validate and spool one recorder hook run, start its delivery; the exit code.

    Every failed system call becomes one line naming the path and the fix (exit 2).
    """
    try:
        return _accept(args, dict(os.environ) if env is None else env)
    except OSError as e:
        return _error(ConfigError(spool_access.permission_fix(Path(), e)))


def _accept(args: HookArgs, env: dict[str, str]) -> int:
    from scheduler.hooks.config import hook_config

    try:
        config = hook_config(args.config)
    except KamadoError as e:
        return _error(e)
    origin = args.origin
    try:
        given = require_utf8(_recording_path(args, env))
        path = absolute(given, _cwd())
        if args.start:
            check_started(Path(path))
        else:
            check_recording(Path(path))
        request = hook_request(
            origin, env=env, args=list(args.arguments), path=path, failed=args.failed,
            start=args.start,
        )  # fmt: skip
        spool_store.write_entry(config.spool_dir, origin, request.to_json())
    except KamadoError as e:
        log_line(config.state_dir, f"{origin}: error: {e}")
        return _error(e)
    what = f"the start of {path!r}" if args.start else repr(path)
    try:
        if not config.broker and not spool_store.service_running(config.spool_dir):
            log_line(config.state_dir, f"{origin}: spooled {what}; no broker configured")
            return _error(no_broker(config.spool_dir))
        detail = hand_off(config)
    except KamadoError as e:
        log_line(config.state_dir, f"{origin}: spooled {what}; {e}")
        return _error(e)
    log_line(config.state_dir, f"{origin}: spooled {what}: {detail}")
    _report(args, "spooled", detail)
    return 0


def main(argv: list[str]) -> int | None:
    """The quick path's entry (``kamado.cli.quick``); None hands argv to the full CLI."""
    args = parse_args(argv)
    if args is None:
        return None
    return accept(args)
