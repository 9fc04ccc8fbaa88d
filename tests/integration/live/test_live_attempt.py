"""A live attempt follows a recording written in real time and finishes right after it.

Real redis-server, a real Celery app's task run in this process, real ffmpeg writing the
recording at real time (``-re``) and real ffmpeg/ffprobe encoding and verifying it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import programme, recording_in_real_time
from tests.support.media import sha256
from tests.support.redis_proc import RedisProcess
from worker.admin.notify import Notifier
from worker.broker.live import Phase, finish_recording, open_live, read_live
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.encode.ffprobe import read_media
from worker.jobs import ENCODE_TASK, Job, JobState
from worker.runtime.tasks import register_tasks, run_attempt
from worker.settings.model import Settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration

SECONDS = 6.0


@pytest.fixture
def registry(redis_server: RedisProcess) -> Iterator[Registry]:
    registry = Registry.connect(redis_server.url, lease_ttl=30, max_attempts=3)
    yield registry
    registry.close()


def live_settings(redis_server: RedisProcess, tmp_path: Path) -> Settings:
    return Settings(
        broker_url=redis_server.url,
        state_dir=tmp_path / "state",
        worker={"backends": ["x264"]},
        staging={"scratch_dir": tmp_path / "scratch"},
        live={"poll": 0.2, "head_wait": 1.0, "head_bytes": 256 * 1024},
    )


def test_a_live_attempt_finishes_seconds_after_the_recording_ends(
    redis_server: RedisProcess, registry: Registry, tmp_path: Path
) -> None:
    settings = live_settings(redis_server, tmp_path)
    app = create_app(settings)
    register_tasks(app, settings)
    rec = tmp_path / "rec" / "live.ts"
    rec.parent.mkdir()
    rec.touch()  # EPGStation's start command runs once the file is open
    job = Job.create(str(rec), "h264-x264", live=True, recording=programme(SECONDS))
    job = submit_job(app, registry, settings, job).job
    open_live(registry, job.id, Phase.RECORDING, worker="test")
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        outcome["result"] = run_attempt(
            app.tasks[ENCODE_TASK], app, settings, registry, job, Notifier(settings.notify)
        )
        outcome["at"] = time.monotonic()

    with recording_in_real_time(rec, SECONDS) as writer:
        runner = threading.Thread(target=attempt)
        runner.start()
        time.sleep(SECONDS / 2)
        state = read_live(registry, job.id)
        record = registry.get(job.id)
        assert record is not None and record.state is JobState.ENCODING
        writer.wait(30)
    ended = time.monotonic()
    digest = sha256(rec)  # the finished recording, which the attempt must only read
    assert finish_recording(registry, job.id) == "following"
    runner.join(60)
    assert not runner.is_alive()
    result = outcome["result"]
    assert result.get("skipped") is None, result
    record = registry.get(job.id, with_history=True)
    assert record is not None and record.state is JobState.DONE
    assert [a.outcome for a in record.history] == ["done"]
    after = outcome["at"] - ended
    assert after < 10, f"output in place {after:.1f} s after the programme ended"
    out = Path(job.output)
    info = read_media(settings.encode.ffprobe, out)
    source = read_media(settings.encode.ffprobe, rec)
    assert info.duration_s is not None and source.duration_s is not None
    assert abs(info.duration_s - source.duration_s) < 0.5
    assert state is not None and state.read_bytes > 0
    assert sorted(p.name for p in rec.parent.iterdir()) == sorted(["live.ts", out.name])
    assert not list((tmp_path / "scratch").glob("live-*"))
    assert sha256(rec) == digest
    print(f"live: output verified and in place {after:.2f} s after the programme ended")
    app.close()
