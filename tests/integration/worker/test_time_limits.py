"""Time limits and a killed pool child never leave an orphan ffmpeg behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import redis

from tests.support.media import Clips, leftovers
from tests.support.procs import parent_of, pids_with, wait_for
from tests.support.redis_proc import RedisProcess
from tests.support.workers import client_session, client_settings, running_worker
from worker import onebox
from worker.jobs import Job
from worker.submit import submit_job

pytestmark = pytest.mark.integration

# A profile slow enough that an 8 s 1080i clip takes far longer than the limits below.
SLOW = json.dumps({"slow": {"backends": ["x264"], "x264_preset": "veryslow", "height": None}})


def test_soft_time_limit_stops_ffmpeg_and_fails_the_job_clearly(
    redis_server: RedisProcess, clips: Clips, tmp_path: Path
) -> None:
    source = Path(shutil.copy2(clips.long_1080i, tmp_path / "long.ts"))
    env = {
        "KAMADO_PROFILES": SLOW,
        "KAMADO_ENCODE__SOFT_TIME_LIMIT": "3",
        "KAMADO_ENCODE__TIME_LIMIT": "30",
    }
    with running_worker(redis_server.url, tmp_path / "state", **env) as (app, _, _):
        settings = client_settings(redis_server.url, tmp_path / "state", profiles=json.loads(SLOW))
        job = Job.create(str(source), "slow")
        (outcome,) = onebox.encode_files(
            client_session(app, settings), [job], lambda _i: None, timeout=60
        )
        assert not outcome.ok
        assert outcome.error is not None
        assert "ran past encode.soft_time_limit (3 s); ffmpeg was stopped" in outcome.error
        assert wait_for(lambda: not pids_with(str(tmp_path)), timeout=5)
    assert not source.with_suffix(".mp4").exists()
    assert leftovers(tmp_path) == []


def test_a_killed_pool_child_takes_its_ffmpeg_with_it(
    redis_server: RedisProcess, clips: Clips, tmp_path: Path
) -> None:
    source = Path(shutil.copy2(clips.long_1080i, tmp_path / "long.ts"))
    with running_worker(redis_server.url, tmp_path / "state", KAMADO_PROFILES=SLOW) as (
        app,
        _,
        daemon,
    ):
        settings = client_settings(redis_server.url, tmp_path / "state", profiles=json.loads(SLOW))
        box = client_session(app, settings)
        submit_job(app, box.registry, settings, Job.create(str(source), "slow"))
        assert wait_for(lambda: pids_with(str(tmp_path)), timeout=30), "ffmpeg never started"
        (ffmpeg,) = pids_with(str(tmp_path))
        pool_child = parent_of(ffmpeg)
        assert pool_child != daemon.pid  # the prefork pool child, not the main process
        os.kill(pool_child, signal.SIGKILL)
        # PR_SET_PDEATHSIG: the kernel kills ffmpeg when the pool child dies.
        assert wait_for(lambda: ffmpeg not in pids_with(str(tmp_path)), timeout=5)
        # The job was requeued and restarted; end the worker hard and forget the message.
        daemon.stop(sig=signal.SIGKILL, grace=1)
    redis.Redis.from_url(redis_server.url).flushdb()
