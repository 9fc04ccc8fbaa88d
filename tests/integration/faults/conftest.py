"""The fault rig: a redis-server with AOF, real worker processes, a real reconciler loop."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery

from tests.support.media import Clips, leftovers, sha256
from tests.support.redis_proc import RedisProcess
from tests.support.workers import running_worker
from worker import process
from worker.broker.reconcile import reconcile
from worker.broker.registry import JobRecord, Registry
from worker.celery_app import create_app
from worker.encode.verify import verify_output
from worker.errors import BrokerError
from worker.jobs import Job, JobState
from worker.settings.model import Settings
from worker.submit import submit_job

LEASE_TTL = 3.0
# Slow enough that an 8 s 1080i clip encodes for several seconds: time to cause a fault.
PROFILES = {"fault": {"backends": ["x264"], "x264_preset": "slow", "height": None}}


@dataclass
class Rig:
    """One fault test's world: its redis-server, directories, workers and reconciler."""

    redis: RedisProcess
    root: Path
    clips: Clips
    stack: contextlib.ExitStack
    workers: dict[str, tuple[Celery, str, process.Daemon]] = field(default_factory=dict)
    _reconciling: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.settings = Settings(
            broker_url=self.redis.url,
            state_dir=self.root / "client",
            jobs={"lease_ttl": LEASE_TTL, "reconcile_interval": 1, "retry_delay": 0.5},
            profiles=PROFILES,
        )
        self.app = create_app(self.settings)
        self.registry = Registry.connect(self.redis.url, lease_ttl=LEASE_TTL, max_attempts=3)
        self.rec = self.root / "rec"
        self.out = self.root / "out"
        self.rec.mkdir()
        self.out.mkdir()

    def env(self) -> dict[str, str]:
        return {
            "KAMADO_JOBS__LEASE_TTL": str(LEASE_TTL),
            "KAMADO_JOBS__RETRY_DELAY": "0.5",
            "KAMADO_PROFILES": json.dumps(PROFILES),
            "KAMADO_ENCODE__PROGRESS_INTERVAL": "0.5",
            # Outputs go to out/, not beside the sources: the workers must allow it.
            "KAMADO_ENCODE__OUTPUT_DIR": str(self.out),
        }

    def start_worker(self, name: str, **extra_env: str) -> tuple[Celery, str, process.Daemon]:
        """A real `kamado worker` process; stopped at the end of the test."""
        ctx = running_worker(
            self.redis.url, self.root / f"worker-{name}", **(self.env() | extra_env)
        )
        self.workers[name] = self.stack.enter_context(ctx)
        return self.workers[name]

    def source(self, clip: Path | None = None, name: str = "番組 (fault).ts") -> Path:
        return Path(shutil.copy2(clip or self.clips.long_1080i, self.rec / name))

    def submit(self, source: Path, profile: str = "fault") -> Job:
        job = Job.create(str(source), profile, output_dir=self.out)
        submit_job(self.app, self.registry, self.settings, job)
        return job

    def start_reconciler(self) -> None:
        """What the scheduler service does: a reconciler pass every second."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(1.0):
                with contextlib.suppress(BrokerError):
                    reconcile(self.app, self.registry, grace=LEASE_TTL)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.stack.callback(lambda: (stop.set(), thread.join(5)))

    def wait_state(self, job: Job, states: set[JobState], timeout: float = 120) -> JobRecord:
        deadline = time.monotonic() + timeout
        record = None
        while time.monotonic() < deadline:
            with contextlib.suppress(BrokerError):
                record = self.registry.get(job.id, with_history=True)
                if record and record.state in states:
                    return record
            time.sleep(0.2)
        raise AssertionError(f"job {job.id} not in {states} after {timeout} s: {record}")

    def wait_encoding(self, job: Job, timeout: float = 60) -> JobRecord:
        """Until ffmpeg is past its first frames."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.registry.get(job.id)
            if record and record.progress and record.progress.frame > 0:
                return record
            time.sleep(0.1)
        raise AssertionError(f"job {job.id} never started encoding")

    def assert_done_once(self, job: Job, source: Path, digest: str) -> JobRecord:
        """Done exactly once: one verified output, no temp files, source untouched."""
        record = self.wait_state(job, {JobState.DONE, JobState.FAILED, JobState.CANCELLED})
        assert record.state is JobState.DONE, record
        outputs = sorted(p.name for p in self.out.iterdir())
        assert outputs == [Path(job.output).name]
        verify_output(Path(job.output), _probe(source), self.settings.verify)
        assert leftovers(self.out) == [] and leftovers(self.rec) == []
        assert sha256(source) == digest
        done = [a for a in record.history if a.outcome == "done"]
        assert len(done) == 1, record.history
        return record


def _probe(source: Path):  # type: ignore[no-untyped-def]
    from worker.encode.ffprobe import read_media

    return read_media("ffprobe", source)


@pytest.fixture
def rig(own_redis: RedisProcess, tmp_path: Path, clips: Clips) -> Iterator[Rig]:
    with contextlib.ExitStack() as stack:
        rig = Rig(own_redis, tmp_path, clips, stack)
        stack.callback(rig.app.close)
        stack.callback(rig.registry.close)
        yield rig
