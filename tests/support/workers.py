"""Real `kamado worker` processes for tests, on a real broker."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery

from worker import onebox, process
from worker.celery_app import create_app
from worker.settings.model import Settings


def worker_env(broker_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a worker subprocess: the broker, a state dir, software encoding."""
    env = {
        "KAMADO_BROKER_URL": broker_url,
        "KAMADO_STATE_DIR": str(state_dir),
        "KAMADO_WORKER__BACKENDS": json.dumps(["x264"]),
        "KAMADO_CONFIG": "",
        "REMAP_SIGTERM": "SIGQUIT",
    }
    env.update(extra)
    return env


@contextmanager
def running_worker(
    broker_url: str,
    state_dir: Path,
    *,
    queues: str = "encode.gpu,encode.cpu",
    **extra_env: str,
) -> Iterator[tuple[Celery, str, process.Daemon]]:
    """Start `kamado worker` as a real process; yield a client app, its name and the process."""
    state_dir.mkdir(parents=True, exist_ok=True)
    hostname = f"test-{secrets.token_hex(3)}@localhost"
    argv = [
        sys.executable, "-m", "worker.cli.main", "worker",
        "--queues", queues, "--hostname", hostname, "--loglevel", "INFO",
    ]  # fmt: skip
    env = worker_env(broker_url, state_dir, **extra_env)
    daemon = process.Daemon(argv, env=env, log=state_dir / f"{hostname}.log")
    settings = Settings(broker_url=broker_url, state_dir=state_dir)
    app = create_app(settings)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if not daemon.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{daemon.log_tail(30)}")
        yield app, hostname, daemon
    finally:
        daemon.stop(grace=15)
        app.close()


def client_session(app: Celery, settings: Settings) -> onebox.Session:
    """A submitting client's session on a configured broker (no local worker)."""
    registry = onebox.open_registry(settings, str(app.conf.broker_url))
    return onebox.Session(app, registry, settings)


def client_settings(broker_url: str, state_dir: Path, **fields: Any) -> Settings:
    """Settings a submitting client uses."""
    return Settings(broker_url=broker_url, state_dir=state_dir, **fields)


def environ_without_kamado() -> dict[str, str]:
    """The test process's environment minus any KAMADO_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
