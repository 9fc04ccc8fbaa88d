"""EPGStation's start hook, then its finish hook, run as real processes on a real redis."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from scheduler.live import direct_queue
from tests.integration.scheduler.conftest import Kamado
from tests.integration.scheduler.test_hooks import HOSTILE, epgstation_env
from worker.broker.heartbeat import BackendSpeed, WorkerHeartbeat
from worker.broker.keys import queue_lists
from worker.broker.presence import publish, record_speed
from worker.broker.registry import Registry, job_id_of

pytestmark = pytest.mark.integration

FAST = "celery@fast"


def now_env(recpath: str) -> dict[str, str]:
    """The recorder's variables for a programme that started a moment ago (30 minutes)."""
    start = int(time.time() * 1000)
    return epgstation_env(recpath, STARTAT=str(start), ENDAT=str(start + 1_800_000))


def fast_worker(registry: Registry) -> None:
    """A GPU worker measured at 3× real time for h264-auto (the default profile) with qsv."""
    record_speed(registry, FAST, "qsv", None, 3.0, profile="h264-auto")
    beat = WorkerHeartbeat(hostname=FAST, queues=["encode.gpu"],
                           backends=[BackendSpeed(backend="qsv", realtime=3.0)])  # fmt: skip
    publish(registry, beat, ttl=120)


def waiting_in(registry: Registry, *queues: str) -> list[str]:
    return [
        job_id_of(raw) or ""
        for key in queue_lists(queues)
        for raw in registry.client.lrange(key, 0, -1)
    ]


def hook(kamado: Kamado, env: dict[str, str], *flags: str) -> dict[str, str]:
    done = kamado.run("hook", "epgstation", *flags, "--wait", "--json", env=env)
    assert done.returncode == 0, done.stderr
    answer: dict[str, str] = json.loads(done.stdout)
    return answer


def test_the_start_hook_sends_a_live_job_to_the_fast_worker_and_the_finish_hook_names_it(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    fast_worker(registry)
    rec = tmp_path / "recorded" / HOSTILE
    rec.parent.mkdir()
    env = now_env(str(rec))
    started = hook(kamado, env, "--start")  # the recorder has not written a byte yet
    job_id = started["id"]
    assert started["action"] == "live: recording"
    assert started["detail"] == f"{FAST} (3× real time)"
    assert waiting_in(registry, direct_queue(FAST)) == [job_id]
    (row,) = kamado.json("status")
    assert row["id"] == job_id and row["state"] == "queued"
    assert row["live"]["phase"] == "recording" and row["live"]["worker"] == FAST
    assert row["waiting"] == f"sent to {FAST}'s own queue (a live job)"
    shown = kamado.run("status", job_id, env={"PATH": os.environ["PATH"], "COLUMNS": "200"})
    assert f"live: sent to {FAST}, not started yet" in shown.stdout, shown.stdout
    shutil.copyfile(tiny_ts, rec)
    # Nobody took it (no worker runs here): the finish hook sends it on as an ordinary job.
    finished = hook(kamado, env)
    assert finished == {"action": "released", "id": job_id, "detail": "encode.gpu"}
    assert waiting_in(registry, direct_queue(FAST)) == []
    assert waiting_in(registry, "encode.gpu", "encode.cpu") == [job_id]
    (row,) = kamado.json("status")
    assert row["live"]["phase"] == "ordinary"
    assert row["live"]["reason"] == "the live attempt is gone"
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"epgstation: live: recording {job_id}" in log
    assert f"epgstation: released {job_id}" in log


def test_with_no_fast_worker_the_live_job_waits_and_status_says_why(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "番組.ts"
    env = now_env(str(rec))
    started = hook(kamado, env, "--start")
    assert started["action"] == "live: waiting"
    assert started["detail"] == "no worker measured at ≥ 1.3× real time for h264-auto"
    shown = kamado.run("status", env={"PATH": os.environ["PATH"], "COLUMNS": "200"})
    assert "live: waiting for the finish hook (no worker measured at ≥ 1.3× real time" in (
        shown.stdout
    ), shown.stdout
    assert waiting_in(registry, "encode.gpu", "encode.cpu") == []
    shutil.copyfile(tiny_ts, rec)
    assert hook(kamado, env)["action"] == "released"
    assert waiting_in(registry, "encode.gpu", "encode.cpu") == [started["id"]]


def test_a_start_hook_through_the_spool_is_delivered_as_a_live_job(
    kamado: Kamado, registry: Registry, tmp_path: Path
) -> None:
    fast_worker(registry)
    rec = tmp_path / "spooled start.ts"
    done = kamado.run("hook", "epgstation", "--start", "--json", env=now_env(str(rec)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["action"] == "spooled"
    kamado.delivered()
    (job,) = registry.list()
    assert job.job.live and waiting_in(registry, direct_queue(FAST)) == [job.id]
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"epgstation: spooled the start of {str(rec)!r}" in log
    assert f"epgstation: live: recording {job.id} {str(rec)!r} {FAST}" in log


def test_start_with_failed_is_bad_input_on_both_routes_and_nothing_is_kept(
    kamado: Kamado, registry: Registry, tmp_path: Path
) -> None:
    env = now_env(str(tmp_path / "a.ts"))
    for flags in (("--start", "--failed"), ("--failed", "--start", "--wait")):
        done = kamado.run("hook", "epgstation", *flags, env=env)
        assert done.returncode == 2, done.stderr
        assert "--start (recordingStartCommand) and --failed" in done.stderr
    assert registry.list() == []
    assert kamado.json("spool", "list") == []


def test_with_live_jobs_off_the_start_hook_only_logs_a_line(
    kamado: Kamado, registry: Registry, tmp_path: Path
) -> None:
    with kamado.config.open("a", encoding="utf-8") as fh:
        fh.write("[live]\nenabled = false\n")
    rec = tmp_path / "a.ts"
    started = hook(kamado, now_env(str(rec)), "--start")
    assert started["action"] == "skipped" and started["id"] is None
    assert registry.list() == []
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"epgstation: skipped  {str(rec)!r} a recording's start, and live jobs are off" in log


def test_a_failed_recording_config_skips_cancels_its_live_job_through_the_spool(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    with kamado.config.open("a", encoding="utf-8") as fh:
        fh.write('[scheduler.hold]\nfailed_recordings = "skip"\n')
    rec = tmp_path / "失敗.ts"
    env = now_env(str(rec))
    job_id = hook(kamado, env, "--start")["id"]
    shutil.copyfile(tiny_ts, rec)
    done = kamado.run("hook", "epgstation", "--failed", env=env)
    assert done.returncode == 0, done.stderr
    kamado.delivered()
    (job,) = registry.list()
    assert (job.id, job.state.value) == (job_id, "cancelled")
    assert waiting_in(registry, "encode.gpu", "encode.cpu") == []
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"live job {job_id}: cancelled" in log, log
