"""Fixtures for the scheduler's integration tests: a config file, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import pids_with, wait_for
from tests.support.redis_proc import RedisProcess
from worker.broker.registry import Registry
from worker.encode.sample import make_sample

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Kamado:
    """The kamado CLI run as a real process with one config file."""

    config: Path
    state_dir: Path
    broker_url: str

    def run(
        self,
        *args: str | bytes,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run `kamado ARGS --config FILE` with exactly ``env`` (plus PYTHONPATH to this tree)."""
        argv = [sys.executable, "-m", "worker.cli.main", *args, "--config", str(self.config)]
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} if env is None else dict(env)
        return subprocess.run(
            argv, env=base, cwd=cwd or ROOT, capture_output=True, text=True,
            timeout=timeout, errors="replace",
        )  # fmt: skip

    def deliveries(self) -> list[int]:
        """Pids of the detached `spool flush` processes hooks started for this config."""
        return pids_with(f"spool\0flush\0--config\0{self.config}\0", program=b"")

    def settle(self, timeout: float = 60) -> None:
        """Wait until every delivery a hook started has ended (each hook starts one)."""
        assert wait_for(lambda: not self.deliveries(), timeout), "a hook's delivery hangs"

    def delivered(self, timeout: float = 60) -> None:
        """Wait until hooks' deliveries have emptied the spool and ended."""
        spool = self.state_dir / "spool"
        assert wait_for(lambda: not any(spool.glob("*.json")), timeout), sorted(spool.iterdir())
        self.settle(timeout)

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run a --json command that must succeed and parse its output."""
        done = self.run(*args, "--json", env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def write_config(path: Path, broker_url: str, state_dir: Path, extra: str = "") -> Path:
    """A kamado.toml naming the broker and the state dir (and any extra TOML)."""
    path.write_text(
        f'broker_url = "{broker_url}"\nstate_dir = "{state_dir}"\n'
        "[scheduler]\nmin_age = 0\nsettle_time = 0\n" + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def kamado(redis_server: RedisProcess, tmp_path: Path) -> Iterator[Kamado]:
    """The CLI on the shared redis-server, flushed for this test."""
    Registry.connect(redis_server.url).client.flushall()
    state = tmp_path / "state"
    yield Kamado(write_config(tmp_path / "kamado.toml", redis_server.url, state), state,
                 redis_server.url)  # fmt: skip


@pytest.fixture
def registry(redis_server: RedisProcess) -> Iterator[Registry]:
    """The job registry on the shared redis-server."""
    reg = Registry.connect(redis_server.url)
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def tiny_ts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-second broadcast-like TS, copied by tests under hostile names."""
    return make_sample(tmp_path_factory.mktemp("ts") / "tiny.ts", seconds=1)
