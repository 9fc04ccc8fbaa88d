"""The whole live path with real processes: EPGStation's start and finish hooks run as the
kamado CLI, a real `kamado worker` measured fast enough follows the recording, and a
worker killed mid-recording leaves the job to run as an ordinary one after the finish.

Real redis-server, real `kamado worker` processes (Celery prefork, x264), the hooks with
EPGStation's exact variables (``--wait``: delivered in the hook's own process), and a
recording written at real time by ffmpeg ``-re``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.scheduler.conftest import Kamado, write_config
from tests.integration.scheduler.test_hooks import epgstation_env
from tests.support.live import recording_in_real_time
from tests.support.media import Clips, sha256
from tests.support.redis_proc import RedisProcess
from tests.support.workers import running_worker
from worker.broker.live import read_live
from worker.broker.presence import profile_realtime
from worker.broker.registry import Registry
from worker.jobs import JobState

pytestmark = pytest.mark.integration

SECONDS = 8.0
PROFILE = "h264-auto"  # what the hook picks by default
LEASE = 4.0
LIVE_ENV = {
    "KAMADO_LIVE__POLL": "0.2",
    "KAMADO_LIVE__HEAD_WAIT": "1",
    "KAMADO_LIVE__HEAD_BYTES": str(256 * 1024),
    "KAMADO_JOBS__LEASE_TTL": str(LEASE),
}


@pytest.fixture
def world(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[Kamado, Registry, Path]]:
    """The hooks' CLI and config, the registry, and the output directory (with
    ``recorded/`` beside it for the recordings)."""
    registry = Registry.connect(redis_server.url, lease_ttl=LEASE)
    registry.client.flushall()
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "recorded").mkdir()
    extra = (
        f'[encode]\noutput_dir = "{out}"\n[jobs]\nlease_ttl = {LEASE}\n'
        "[live]\npoll = 0.2\nhead_wait = 1\n"
    )
    config = write_config(tmp_path / "kamado.toml", redis_server.url, tmp_path / "state", extra)
    yield Kamado(config, tmp_path / "state", redis_server.url), registry, out
    registry.close()


def hook(kamado: Kamado, path: Path, *flags: str) -> dict[str, Any]:
    start = int(time.time() * 1000)
    env = epgstation_env(str(path), STARTAT=str(start), ENDAT=str(start + int(SECONDS * 1000)))
    done = kamado.run("hook", "epgstation", *flags, "--wait", "--json", env=env)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def wait_for(registry: Registry, job_id: str, ok: Any, timeout: float = 90) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        record = registry.get(job_id)
        if record is not None and ok(record):
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id}: {registry.get(job_id)}")


def warm_up(kamado: Kamado, registry: Registry, clips: Clips, tmp: Path, hostname: str) -> None:
    """An ordinary job of the profile, so the worker has a measured speed for it."""
    first = Path(shutil.copy2(clips.isdb_1080i, tmp / "warm-up.ts"))
    job_id = hook(kamado, first)["id"]
    wait_for(registry, job_id, lambda r: r.state is JobState.DONE)
    speed = profile_realtime(registry, hostname, "x264", PROFILE)
    assert speed is not None and speed >= 1.3, speed


def test_a_fast_worker_follows_the_recording_from_the_start_hook_to_the_finish_hook(
    world: tuple[Kamado, Registry, Path], redis_server: RedisProcess, clips: Clips, tmp_path: Path
) -> None:
    kamado, registry, out = world
    rec_dir = tmp_path / "recorded"
    env = {**LIVE_ENV, "KAMADO_ENCODE__OUTPUT_DIR": str(out)}
    with running_worker(redis_server.url, tmp_path / "w", **env) as (_app, hostname, _daemon):
        warm_up(kamado, registry, clips, rec_dir, hostname)
        rec = rec_dir / "ライブ 番組.ts"
        with recording_in_real_time(rec, SECONDS) as writer:
            time.sleep(0.3)  # EPGStation runs its start command once the file is open
            started = hook(kamado, rec, "--start")
            assert started["action"] == "live: recording", started
            assert started["detail"].startswith(hostname)
            job_id = started["id"]
            wait_for(registry, job_id, lambda r: r.state is JobState.ENCODING)
            writer.wait(30)
        ended = time.monotonic()
        digest = sha256(rec)
        finished = hook(kamado, rec)
        assert finished["action"] == "live: following" and finished["id"] == job_id
        wait_for(registry, job_id, lambda r: r.state.final)
        after = time.monotonic() - ended
        record = registry.get(job_id, with_history=True)
        assert record is not None and record.state is JobState.DONE, record
        assert [a.outcome for a in record.history] == ["done"]
        assert after < 10, f"{after:.1f} s after the programme ended"
        assert sha256(rec) == digest
        live = read_live(registry, job_id)
        assert live is not None and live.phase.value == "finished"
        assert sorted(p.name for p in out.iterdir()) == ["warm-up.mp4", "ライブ 番組.mp4"]
        print(f"live through real hooks and a real worker: {after:.2f} s after the end")


def test_a_worker_killed_mid_recording_leaves_an_ordinary_job_after_the_finish_hook(
    world: tuple[Kamado, Registry, Path], redis_server: RedisProcess, clips: Clips, tmp_path: Path
) -> None:
    kamado, registry, out = world
    rec_dir = tmp_path / "recorded"
    rec = rec_dir / "killed.ts"
    env = {**LIVE_ENV, "KAMADO_ENCODE__OUTPUT_DIR": str(out)}
    with running_worker(redis_server.url, tmp_path / "a", **env) as (_app, hostname, daemon):
        warm_up(kamado, registry, clips, rec_dir, hostname)
        with recording_in_real_time(rec, SECONDS) as writer:
            time.sleep(0.3)
            started = hook(kamado, rec, "--start")
            assert started["action"] == "live: recording", started
            job_id = started["id"]
            wait_for(registry, job_id, lambda r: r.state is JobState.ENCODING)
            daemon.kill()  # SIGKILL, worker and pool child, mid-recording
            writer.wait(30)
    digest = sha256(rec)
    give_up = time.monotonic() + 3 * LEASE
    while registry.lease_alive(job_id) and time.monotonic() < give_up:
        time.sleep(0.2)
    assert not registry.lease_alive(job_id)
    record = registry.get(job_id)
    assert record is not None and record.state is JobState.ENCODING  # nobody requeued it live
    with running_worker(redis_server.url, tmp_path / "b", **env):
        finished = hook(kamado, rec)
        assert finished["action"] == "released", finished
        wait_for(registry, job_id, lambda r: r.state.final)
    record = registry.get(job_id, with_history=True)
    assert record is not None and record.state is JobState.DONE, record
    assert [a.outcome for a in record.history] == ["lost", "done"]
    assert sha256(rec) == digest
    assert sorted(p.name for p in out.iterdir()) == ["killed.mp4", "warm-up.mp4"]
    assert [p.name for p in rec_dir.iterdir() if p.name.startswith(".")] == []
    assert not subprocess.run(["pgrep", "-f", str(rec)], capture_output=True).stdout
