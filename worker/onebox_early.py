"""`kamado encode`'s head start: the embedded broker and the local worker spawned first.

A cold `kamado encode` waits for two Python processes to import and boot: its own
command line (typer, the settings models, Celery's client) and the `kamado worker` it
starts (Celery's worker, the encode pipeline). Started one after the other they cost
about 1.5 s before the first encode; started side by side, about half of that.

So ``encode`` has a quick path (``kamado.cli.quick``, run before the full command line
is imported): when the command line and the environment say one box (no broker
configured), every FILE is a regular file and the output directory exists, it spawns
the embedded broker and the worker at once and hands the command back to the full
command line. :func:`worker.onebox.session` adopts them only when the settings it has
validated ask for the very same pair (state directory, slots, config, output directory,
reprobe); otherwise, or when the command fails before that, they are stopped (at exit
at the latest). Nothing here may fail the command: any doubt means no head start.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker import process
from worker.broker.embedded import EmbeddedBroker
from worker.broker.keys import worker_key
from worker.errors import KamadoError
from worker.settings.file import find_config, read_toml

if TYPE_CHECKING:
    from celery import Celery

    from worker.broker.registry import Registry

__all__ = ["Early", "LocalWorker", "Wanted", "main", "take"]

WORKER_READY_TIMEOUT = 90.0
DEFAULT_STATE_DIR = "~/.local/state/kamado"


@dataclass(frozen=True)
class Wanted:
    """What a one-box session's broker and worker are started with."""

    state_dir: Path
    concurrency: int
    config: Path | None
    output_dir: Path | None
    reprobe: bool


class LocalWorker:
    """A real `kamado worker` process on the embedded broker."""

    def __init__(self, wanted: Wanted, broker_url: str) -> None:
        log_dir = wanted.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / "worker.log"
        self.hostname = f"onebox-{secrets.token_hex(3)}@{os.uname().nodename}"
        argv = [
            sys.executable, "-m", "worker.cli.main", "worker",
            "--hostname", self.hostname, "--concurrency", str(wanted.concurrency),
        ]  # fmt: skip
        if wanted.reprobe:
            argv.append("--reprobe")
        if wanted.config:
            argv += ["--config", str(wanted.config)]
        env = {
            "KAMADO_BROKER_URL": broker_url,
            "KAMADO_STATE_DIR": str(wanted.state_dir),
            # Celery's soft shutdown on SIGTERM: running work is requeued, not lost.
            "REMAP_SIGTERM": "SIGQUIT",
        }
        if wanted.output_dir is not None:  # `kamado encode -o DIR`: this worker may write there
            env["KAMADO_ENCODE__OUTPUT_DIR"] = str(wanted.output_dir)
        self.daemon = process.Daemon(argv, env=env, log=self.log)

    def check(self) -> None:
        """Raise if the worker process has died."""
        if not self.daemon.alive():
            raise KamadoError(
                f"the local worker exited ({self.daemon.returncode}); its log "
                f"{self.log} ends with:\n{self.daemon.log_tail(15)}"
            )

    def wait_ready(
        self,
        app: Celery,
        timeout: float = WORKER_READY_TIMEOUT,
        *,
        working: Callable[[], bool] = lambda: False,
    ) -> None:
        """Wait until the worker answers a ping over the broker, or ``working`` says it
        took a job already (then no ping is needed: each one costs both processes CPU
        that the first encode wants)."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.check()
            if working():
                return
            # A ping sent before the worker listens is lost and waits out its timeout: short
            # ones see a fresh worker sooner; after 10 s, longer ones allow a slow reply.
            wait = 0.25 if time.monotonic() - started < 10 else 0.5
            replies = app.control.ping(destination=[self.hostname], timeout=wait)
            if replies:
                return
        raise KamadoError(f"the local worker did not come up within {timeout:g} s ({self.log})")

    def wait_idle(self, app: Celery, timeout: float = 30.0) -> bool:
        """Wait until the worker runs no task; True once it said so, False on timeout.

        A Celery worker stopped while a request is active sleeps its whole
        worker_soft_shutdown_timeout (30 s) before going, however soon the task ends.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.daemon.alive():
            active = app.control.inspect(destination=[self.hostname], timeout=1.0).active()
            if active is not None and not active.get(self.hostname):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Warm-stop the worker, then make sure it is gone (the path for a busy worker)."""
        self.daemon.stop(grace=20.0)

    def drop(self, registry: Registry) -> None:
        """Kill the idle worker's process group at once and remove its heartbeat.

        Only for a worker with nothing left to lose: every job it was given is final in
        the registry and the broker holds no unacknowledged message (checked by
        :func:`worker.onebox.quiescent`). Its warm shutdown (pool, event dispatcher,
        heartbeat, lease and watchdog threads) costs about two seconds and saves nothing.
        """
        self.daemon.kill()
        registry.call("remove a heartbeat", registry.client.delete, worker_key(self.hostname))


@dataclass
class Early:
    """A broker and worker spawned ahead of the full command line."""

    wanted: Wanted
    broker: EmbeddedBroker
    worker: LocalWorker
    taken: bool = False
    # The outermost directory the head start created (the state directory on a first
    # run): a command refused after it leaves nothing behind, as one refused before.
    created: Path | None = None

    def discard(self) -> None:
        """Stop both (nobody adopted them) and remove what only they wrote."""
        if self.taken:
            return
        self.taken = True
        self.worker.daemon.kill()
        self.broker.stop()
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet (None: it exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


_early: list[Early] = []


def take(wanted: Wanted) -> Early | None:
    """The head start, when it was made for exactly ``wanted``; any other is stopped."""
    while _early:
        early = _early.pop()
        if early.wanted == wanted and early.worker.daemon.alive():
            early.taken = True
            return early
        early.discard()
    return None


# -- the quick path: guess the session from argv, the environment and the config file --

_FLAGS = {"--force", "--reprobe", "--json", "--no-force"}
_VALUED = {"--profile", "-p", "--output-dir", "-o", "--priority", "--jobs", "-j", "--config", "-c"}


def _parse(argv: list[str]) -> tuple[list[str], dict[str, str], set[str]] | None:
    """FILES, valued options and flags of ``encode ...``; None for anything unusual."""
    files: list[str] = []
    values: dict[str, str] = {}
    flags: set[str] = set()
    rest = iter(argv[1:])
    for arg in rest:
        name, eq, inline = arg.partition("=")
        if arg in _FLAGS:
            flags.add(arg)
        elif name in _VALUED:
            value = inline if eq else next(rest, None)
            if value is None:
                return None
            values[name] = value
        elif arg.startswith("-") and arg != "-":
            return None  # --help or a mistake: the full command line answers
        else:
            files.append(arg)
    return files, values, flags


def _config(values: dict[str, str]) -> tuple[Path | None, dict[str, Any]]:
    """The ``--config`` given (None: found the usual way) and the file's contents."""
    explicit = values.get("--config") or values.get("-c")
    given = Path(explicit) if explicit else None
    path = find_config(given)
    return given, (read_toml(path) if path is not None else {})


def _env(name: str) -> str | None:
    for key, value in os.environ.items():
        if key.upper() == name:
            return value
    return None


def wanted_from(argv: list[str]) -> Wanted | None:
    """The session `kamado encode ARGV` will ask for, or None when in doubt."""
    parsed = _parse(argv)
    if parsed is None:
        return None
    files, values, flags = parsed
    config, data = _config(values)
    if _env("KAMADO_BROKER_URL") or data.get("broker_url"):
        return None  # a configured broker: no local worker to start
    if not files or not all(Path(f).is_file() for f in files):
        return None
    out = values.get("--output-dir") or values.get("-o") or _env("KAMADO_ENCODE__OUTPUT_DIR")
    out = out or data.get("encode", {}).get("output_dir")
    output_dir = Path(out).expanduser().absolute() if out else None
    if output_dir is not None and not output_dir.is_dir():
        return None
    jobs = values.get("--jobs") or values.get("-j") or _env("KAMADO_WORKER__CONCURRENCY")
    concurrency = int(jobs or data.get("worker", {}).get("concurrency", 1))
    state = _env("KAMADO_STATE_DIR") or data.get("state_dir") or DEFAULT_STATE_DIR
    return Wanted(
        state_dir=Path(state).expanduser(),
        concurrency=concurrency,
        config=config,
        output_dir=output_dir,
        reprobe="--reprobe" in flags,
    )


def main(argv: list[str]) -> int | None:
    """``kamado encode``'s quick path: spawn the pair if the session is clear, then hand the
    command back to the full command line (always None)."""
    try:
        wanted = wanted_from(argv)
        if wanted is not None and 1 <= wanted.concurrency <= 16:
            created = _first_missing(wanted.state_dir)
            broker = EmbeddedBroker(wanted.state_dir)
            broker.spawn()
            try:
                worker = LocalWorker(wanted, broker.url)
            except BaseException:
                broker.stop()
                raise
            early = Early(wanted, broker, worker, created=created)
            _early.append(early)
            atexit.register(early.discard)
    except (OSError, ValueError, TypeError, AttributeError, KamadoError):
        pass  # no head start; the full command line says what is wrong, if anything
    return None
