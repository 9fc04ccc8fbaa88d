"""The live tests' rig: a real redis-server and sshd, settings for a local or an SFTP
recording, and a live attempt run by the real encode task in a thread of this process."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.integration.prefetch.remote_worker import sftp_location
from tests.support.live import programme
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess, start_sshd
from worker.admin.notify import Notifier
from worker.broker.keys import queue_lists
from worker.broker.live import Phase, open_live
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.jobs import ENCODE_TASK, Job
from worker.runtime.tasks import register_tasks, run_attempt
from worker.settings.model import Settings
from worker.submit import submit_job


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdProcess]:
    """A real OpenSSH sshd serving the SFTP recordings."""
    server = start_sshd(tmp_path_factory.mktemp("live-sshd"))
    yield server
    server.stop()


@dataclass
class Rig:
    """One live job on a real broker; ``path`` is the recording as the recorder writes it."""

    settings: Settings
    registry: Registry
    app: Celery
    path: Path
    source: str
    outputs: Path
    job: Job | None = None
    outcome: dict[str, Any] = field(default_factory=dict)
    thread: threading.Thread | None = None

    def submit(self, seconds: float, *, deadline: float | None = None) -> Job:
        """Record the live job and open its live phase (as the scheduler's start hook does)."""
        job = Job.create(
            self.source,
            "h264-x264",
            live=True,
            recording=programme(seconds),
            output_dir=self.outputs,
        )
        self.job = submit_job(self.app, self.registry, self.settings, job).job
        self.registry.client.delete(*queue_lists(["encode.cpu"]))  # run here, not by a worker
        open_live(self.registry, self.job.id, Phase.RECORDING, worker="here", deadline=deadline)
        return self.job

    def start(self) -> None:
        """Run the task's attempt in a thread (as a worker's pool process would)."""
        assert self.job is not None
        job = self.job

        def attempt() -> None:
            try:
                self.outcome["result"] = run_attempt(
                    self.app.tasks[ENCODE_TASK], self.app, self.settings, self.registry, job,
                    Notifier(self.settings.notify),
                )  # fmt: skip
            except Exception as e:  # the test reads it
                self.outcome["error"] = e
            self.outcome["at"] = time.monotonic()

        self.thread = threading.Thread(target=attempt, daemon=True)
        self.thread.start()

    def wait(self, timeout: float = 60) -> dict[str, Any]:
        """The attempt's result (it must have ended)."""
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the live attempt did not end"
        if "error" in self.outcome:
            raise self.outcome["error"]
        result: dict[str, Any] = self.outcome["result"]
        return result

    def waiting_messages(self, queue: str = "encode.cpu") -> int:
        """Messages waiting on an ordinary queue (an ordinary job published again)."""
        return sum(self.registry.client.llen(name) for name in queue_lists([queue]))


def make_rig(
    redis_server: RedisProcess, tmp_path: Path, where: str, sshd: SshdProcess | None
) -> Rig:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    outputs = tmp_path / "out"
    outputs.mkdir()
    locations = {}
    name = f"live-{secrets.token_hex(4)}.ts"  # one job id per test on the shared broker
    source = str(recorded / name)
    if where == "sftp":
        assert sshd is not None
        locations = {
            "rec": sftp_location(
                host="127.0.0.1",
                port=sshd.port,
                user=sshd.user,
                key_file=sshd.user_key,
                known_hosts=sshd.known_hosts,
                root=recorded,
            )
        }
        source = f"sftp://rec/{name}"
    settings = Settings(
        broker_url=redis_server.url,
        state_dir=tmp_path / "state",
        worker={"backends": ["x264"]},
        encode={"output_dir": str(outputs)},
        jobs={"lease_ttl": 30, "max_attempts": 3},
        staging={
            "scratch_dir": str(tmp_path / "scratch"),
            "min_free_mb": 0,
            "retries": 2,
            "retry_delay": 0.1,
            "locations": locations,
        },
        live={"poll": 0.2, "head_wait": 1.0, "head_bytes": 256 * 1024},
    )
    app = create_app(settings)
    register_tasks(app, settings)
    registry = Registry.connect(redis_server.url, lease_ttl=30, max_attempts=3)
    return Rig(settings, registry, app, recorded / name, source, outputs)


@pytest.fixture
def rig(redis_server: RedisProcess, tmp_path: Path) -> Iterator[Rig]:
    """A local recording."""
    made = make_rig(redis_server, tmp_path, "local", None)
    yield made
    made.registry.close()
    made.app.close()


@pytest.fixture
def sftp_rig(redis_server: RedisProcess, tmp_path: Path, sshd: SshdProcess) -> Iterator[Rig]:
    """A recording reached over SFTP."""
    made = make_rig(redis_server, tmp_path, "sftp", sshd)
    yield made
    made.registry.close()
    made.app.close()
