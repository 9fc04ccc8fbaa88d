"""A real worker pulls the next job's source over real SFTP while the current one encodes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.prefetch.remote_worker import (
    sftp_location,
    state_of,
    wait_final,
    write_worker_config,
)
from tests.support.media import Clips, sha256
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess, start_sshd
from tests.support.workers import client_settings, running_worker
from worker.broker.registry import RUNNING_STATES, Registry
from worker.encode.sample import make_sample
from worker.jobs import Job, JobState
from worker.runtime.prefetch import IDLE_SWEEP
from worker.staging.api import scratch_path
from worker.submit import submit_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdProcess]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of 1080i: about 12 s of x264 here, time for a second worker to start."""
    return make_sample(tmp_path_factory.mktemp("long") / "long.ts", seconds=30)


def config_for(
    sshd: SshdProcess, recorder: Path, scratch: Path, path: Path, **staging: object
) -> Path:
    location = sftp_location(
        host="127.0.0.1", port=sshd.port, user=sshd.user, key_file=sshd.user_key,
        known_hosts=sshd.known_hosts, root=recorder,
    )  # fmt: skip
    return write_worker_config(path, scratch=scratch, location=location, staging=dict(staging))


def wait_for(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def scratch_files(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.glob("src-*")) if scratch.is_dir() else []


def test_the_next_jobs_source_is_pulled_while_the_current_one_encodes_and_then_used(
    sshd: SshdProcess, own_redis: RedisProcess, clips: Clips, tmp_path: Path
) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    first = Path(shutil.copy2(clips.long_1080i, recorder / "一本目 'a'.ts"))
    second = Path(shutil.copy2(clips.isdb_1080i, recorder / "二本目 $(b).ts"))
    before = sha256(second)
    scratch = tmp_path / "scratch"
    config = config_for(sshd, recorder, scratch, tmp_path / "kamado.toml")
    settings = client_settings(own_redis.url, tmp_path / "client")
    registry = Registry.connect(own_redis.url)
    job1 = Job.create(f"sftp://recorder/{first.name}", "h264-x264")
    job2 = Job.create(f"sftp://recorder/{second.name}", "h264-x264")
    copy = scratch_path(scratch, job2.source)
    with running_worker(own_redis.url, tmp_path / "w", KAMADO_CONFIG=str(config)) as (
        app, _name, daemon,
    ):  # fmt: skip
        submit_job(app, registry, settings, job1)
        submit_job(app, registry, settings, job2)
        wait_for(copy.is_file, 60, "the second job's source in scratch")
        # The copy is complete (renamed from .part) while the first job still runs and the
        # second has not been started by anyone.
        assert state_of(registry, job1.id) in RUNNING_STATES
        waiting = registry.get(job2.id)
        assert waiting is not None and waiting.state is JobState.QUEUED and waiting.attempts == 0
        assert copy.read_bytes() == second.read_bytes()
        # Take the recording off the recorder: the second job can only succeed on the copy.
        aside = tmp_path / "aside"
        aside.mkdir()
        second.rename(aside / second.name)
        records = wait_final(registry, [job1.id, job2.id], 120)
        log = daemon.log_tail(400)
    assert records[job1.id].state is JobState.DONE, records[job1.id].error
    assert records[job2.id].state is JobState.DONE, records[job2.id].error
    assert [r.outcome for r in records[job2.id].history] == ["done"]
    assert f"prefetching the source of job {job2.id}" in log
    assert f"using the prefetched copy of {job2.source}" in log
    assert (recorder / "二本目 $(b).mp4").is_file() and (recorder / "一本目 'a'.mp4").is_file()
    assert sha256(aside / second.name) == before
    assert scratch_files(scratch) == []
    registry.close()


def test_a_copy_prefetched_for_a_job_another_worker_ran_is_removed(
    sshd: SshdProcess, own_redis: RedisProcess, clips: Clips, long_clip: Path, tmp_path: Path
) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    first = Path(shutil.copy2(long_clip, recorder / "long.ts"))
    second = Path(shutil.copy2(clips.isdb_1080i, recorder / "short.ts"))
    scratch_a, scratch_b = tmp_path / "scratch-a", tmp_path / "scratch-b"
    config_a = config_for(sshd, recorder, scratch_a, tmp_path / "a.toml")
    config_b = config_for(sshd, recorder, scratch_b, tmp_path / "b.toml")
    settings = client_settings(own_redis.url, tmp_path / "client")
    registry = Registry.connect(own_redis.url)
    job1 = Job.create(f"sftp://recorder/{first.name}", "h264-x264")
    job2 = Job.create(f"sftp://recorder/{second.name}", "h264-x264")
    with running_worker(own_redis.url, tmp_path / "a", KAMADO_CONFIG=str(config_a)) as (
        app, name_a, daemon_a,
    ):  # fmt: skip
        submit_job(app, registry, settings, job1)
        submit_job(app, registry, settings, job2)
        copy = scratch_path(scratch_a, job2.source)
        wait_for(copy.is_file, 60, "worker A's prefetched copy")
        with running_worker(own_redis.url, tmp_path / "b", KAMADO_CONFIG=str(config_b)) as (
            _app_b, name_b, _daemon_b,
        ):  # fmt: skip
            done2 = wait_final(registry, [job2.id], 60)[job2.id]
            assert done2.state is JobState.DONE and done2.worker == name_b
            assert state_of(registry, job1.id) in RUNNING_STATES  # A is still encoding
            done1 = wait_final(registry, [job1.id], 120)[job1.id]
            assert done1.state is JobState.DONE and done1.worker == name_a
            # A is idle now; the copy it pulled for job 2 must not stay on its disk.
            wait_for(lambda: not scratch_files(scratch_a), IDLE_SWEEP + 15, "A's copy removed")
        log = daemon_a.log_tail(400)
    assert f"job {job2.id} ran elsewhere; removing its prefetched copy" in log
    assert scratch_files(scratch_b) == []
    registry.close()


def test_prefetch_off_pulls_nothing_ahead(
    sshd: SshdProcess, own_redis: RedisProcess, clips: Clips, tmp_path: Path
) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    first = Path(shutil.copy2(clips.long_1080i, recorder / "a.ts"))
    second = Path(shutil.copy2(clips.isdb_1080i, recorder / "b.ts"))
    scratch = tmp_path / "scratch"
    config = config_for(sshd, recorder, scratch, tmp_path / "kamado.toml", prefetch=False)
    settings = client_settings(own_redis.url, tmp_path / "client")
    registry = Registry.connect(own_redis.url)
    job1 = Job.create(f"sftp://recorder/{first.name}", "h264-x264")
    job2 = Job.create(f"sftp://recorder/{second.name}", "h264-x264")
    copy = scratch_path(scratch, job2.source)
    seen_ahead = False
    with running_worker(own_redis.url, tmp_path / "w", KAMADO_CONFIG=str(config)) as (app, _n, _d):
        submit_job(app, registry, settings, job1)
        submit_job(app, registry, settings, job2)
        deadline = time.monotonic() + 120
        while state_of(registry, job1.id) is not JobState.DONE and time.monotonic() < deadline:
            if state_of(registry, job2.id) is JobState.QUEUED and copy.exists():
                seen_ahead = True
            time.sleep(0.05)
        records = wait_final(registry, [job1.id, job2.id], 120)
    assert not seen_ahead
    assert all(r.state is JobState.DONE for r in records.values())
    assert scratch_files(scratch) == []
    registry.close()
