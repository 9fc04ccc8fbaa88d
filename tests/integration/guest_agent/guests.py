"""Real `kamado guest run` processes for tests, on a real redis-server."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery

from worker import process
from worker.celery_app import create_app
from worker.settings.model import Settings


def guest_env(broker_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a guest agent subprocess: the broker, a state dir, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
    env.update(
        {
            "KAMADO_BROKER_URL": broker_url,
            "KAMADO_STATE_DIR": str(state_dir),
            "KAMADO_CONFIG": "",
            "REMAP_SIGTERM": "SIGQUIT",
        }
    )
    env.update(extra)
    return env


def guest_argv(*args: str) -> list[str]:
    """The argv of `kamado guest ...` run with this interpreter."""
    return [sys.executable, "-m", "worker.cli.main", "guest", *args]


@contextmanager
def running_guest(
    broker_url: str, state_dir: Path, *args: str, **extra_env: str
) -> Iterator[tuple[Celery, str, process.Daemon]]:
    """Start `kamado guest run`; yield a client app, the worker's name and the process."""
    state_dir.mkdir(parents=True, exist_ok=True)
    hostname = f"guest-{secrets.token_hex(3)}@localhost"
    argv = guest_argv("run", "--hostname", hostname, *args)
    env = guest_env(broker_url, state_dir, **extra_env)
    daemon = process.Daemon(argv, env=env, log=state_dir / "guest.log")
    app = create_app(Settings(broker_url=broker_url, state_dir=state_dir))
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if not daemon.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"guest agent did not start:\n{daemon.log_tail(40)}")
        yield app, hostname, daemon
    finally:
        daemon.stop(grace=15)
        app.close()


def consumed_queues(app: Celery, hostname: str) -> list[str]:
    """The capability queues a worker consumes right now, as it answers remote control
    (not its own queue ``<hostname>.dq2``, where only live jobs sent to it wait)."""
    replies: dict[str, Any] = (
        app.control.inspect(destination=[hostname], timeout=2).active_queues() or {}
    )
    own = f"{hostname}.dq2"
    return sorted(q["name"] for q in replies.get(hostname, []) if q["name"] != own)
