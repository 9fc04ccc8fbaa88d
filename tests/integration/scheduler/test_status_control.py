"""`kamado status`, `cancel`, `retry`, `workers` and `watch` through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.queues import BrokerState
from tests.integration.scheduler.conftest import Kamado
from worker.broker.heartbeat import BackendProblem, BackendSpeed, HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import host_key
from worker.broker.presence import publish, record_speed
from worker.broker.registry import Registry
from worker.jobs import Job, JobState
from worker.progress import Progress

pytestmark = pytest.mark.integration

VA = "No VA display found for device /dev/dri/renderD128"
FIELDS = {"id", "state", "attempts", "source", "output", "profile", "priority", "worker",
          "backend", "progress", "error"}  # fmt: skip


def submitted(kamado: Kamado, tmp_path: Path, tiny: Path, name: str) -> str:
    target = tmp_path / name
    target.write_bytes(tiny.read_bytes())
    done = kamado.json("enqueue", str(target))
    job_id: str = done["queued"][0]
    return job_id


def fail_twice(registry: Registry, job_id: str) -> None:
    """Two attempts that end in errors, written through the registry's real contract."""
    for n, error in enumerate(["ffmpeg crashed (signal 11)", "source vanished"]):
        assert registry.acquire(job_id, f"attempt{n}", "gpu-vm@host").status == "ok"
        state = JobState.QUEUED if n == 0 else JobState.FAILED
        assert registry.finish(job_id, f"attempt{n}", state, error=error, kind="crash")


def test_status_lists_the_contract_fields_and_one_job_shows_every_attempt(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    job_id = submitted(kamado, tmp_path, tiny_ts, "番組 1.ts")
    fail_twice(registry, job_id)
    (row,) = kamado.json("status")
    assert set(row) >= FIELDS
    assert row["state"] == "failed"
    assert row["attempts"] == 2
    assert row["error"] == "source vanished"
    one = kamado.json("status", job_id[:6])
    assert one["id"] == job_id
    assert [(a["number"], a["error"]) for a in one["history"]] == [
        (1, "ffmpeg crashed (signal 11)"),
        (2, "source vanished"),
    ]
    assert kamado.json("status", "--state", "queued") == []
    bad = kamado.run("status", "--state", "sleeping")
    assert bad.returncode == 2
    assert "unknown state" in bad.stderr


def test_one_job_shows_errors_with_brackets_as_they_are(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    job_id = submitted(kamado, tmp_path, tiny_ts, "[新]番組 [字].ts")
    error = "no location 'recorder': define [staging.locations.recorder] on this worker"
    assert registry.acquire(job_id, "a1", "gpu-vm@host").status == "ok"
    assert registry.finish(job_id, "a1", JobState.FAILED, error=error, kind="crash")
    wide = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "400"}
    shown = kamado.run("status", job_id, env=wide)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("[staging.locations.recorder]") == 2, shown.stdout
    assert "[新]番組 [字].ts" in shown.stdout
    listing = kamado.run("status", env=wide)
    assert "[新]番組 [字].ts" in listing.stdout, listing.stdout


def test_retry_requeues_a_failed_job_and_cancel_removes_a_waiting_one(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    job_id = submitted(kamado, tmp_path, tiny_ts, "a.ts")
    fail_twice(registry, job_id)
    retried = kamado.json("retry", job_id[:8])
    assert retried["id"] == job_id
    record = registry.get(job_id)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.QUEUED, 0)
    again = kamado.run("retry", job_id)
    assert again.returncode == 2
    assert "is queued; there is nothing to retry" in again.stderr
    assert kamado.json("cancel", job_id) == {"id": job_id, "result": "cancelled"}
    assert BrokerState(registry).waiting("encode.gpu") == []
    assert kamado.json("status", job_id)["state"] == "cancelled"


def test_job_ids_must_be_known_and_unambiguous(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    ids = []
    for i in range(20):  # 20 ids over 16 first digits: two must share one
        job = Job.create(f"/rec/{i}.ts", "h264-auto")
        registry.record(job, queue="encode.gpu")
        ids.append(job.id)
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    unknown = kamado.run("cancel", "ffffffffffffffffffff")
    assert unknown.returncode == 2
    assert "no such job" in unknown.stderr
    ambiguous = kamado.run("status", shared)
    assert ambiguous.returncode == 2
    assert "ambiguous" in ambiguous.stderr
    not_hex = kamado.run("retry", "$(id)")
    assert not_hex.returncode == 2
    assert "up to 20 hex digits" in not_hex.stderr


def test_done_jobs_are_not_cancelled_and_retried_only_with_force(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    job_id = submitted(kamado, tmp_path, tiny_ts, "done.ts")
    assert registry.acquire(job_id, "a1", "w@h").status == "ok"
    assert registry.finish(job_id, "a1", JobState.DONE, result={"backend": "qsv"}, backend="qsv")
    cancel = kamado.run("cancel", job_id)
    assert cancel.returncode == 1
    assert "already done" in cancel.stderr
    assert kamado.run("retry", job_id).returncode == 2
    assert kamado.json("retry", job_id, "--force")["id"] == job_id


def test_workers_show_backends_speeds_and_hosts_and_watch_draws_a_frame(
    kamado: Kamado, registry: Registry
) -> None:
    record_speed(registry, "gpu-vm@kamado", "qsv", 410.0, 13.7)
    beat = WorkerHeartbeat(
        hostname="gpu-vm@kamado",
        queues=["encode.gpu"],
        backends=[BackendSpeed(backend="qsv", fps=410.0, realtime=13.7)],
        problems=[BackendProblem(backend="vaapi", status="failed", kind="hardware", reason=VA)],
    )
    publish(registry, beat, ttl=30)
    host = HostHeartbeat(name="haswell", vm_state="running", last_action="start")
    registry.client.set(host_key("haswell"), host.model_dump_json(), ex=30)
    data = kamado.json("workers")
    (worker,) = data["workers"]
    assert worker["hostname"] == "gpu-vm@kamado"
    assert worker["backends"][0]["realtime"] == 13.7
    assert worker["heartbeat_age_s"] < 30
    assert data["hosts"][0]["vm_state"] == "running"
    assert data["workers"][0]["problems"][0]["reason"] == VA
    wide = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "200"}
    table = kamado.run("workers", env=wide).stdout
    assert "qsv ✓ 13.7× 410fps" in table and f"vaapi ✗ refused (hardware): {VA}" in table, table
    frame = kamado.run("watch", "--once")
    assert frame.returncode == 0, frame.stderr
    assert "gpu-vm@kamado" in frame.stdout
    assert "haswell" in frame.stdout


def test_a_hardware_only_job_no_worker_serves_says_why_it_waits(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    target = tmp_path / "ＮＨＫニュース.ts"
    target.write_bytes(tiny_ts.read_bytes())
    done = kamado.json("enqueue", "--profile", "h264-intel", str(target))
    job_id = done["queued"][0]
    one = kamado.json("status", job_id)
    assert one["queue"] == "encode.gpu"
    # The words Flower, the table and watch use, then the backlog and the fix.
    assert one["waiting"].startswith(
        "no hardware worker up; no host agent is up to start the VM (1 job(s) wait in encode.gpu); "
    ), one["waiting"]
    assert "h264-intel never run on the CPU" in one["waiting"]
    wide = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "300"}
    assert "waiting: 1 job(s) wait in encode.gpu" in kamado.run("status", env=wide).stdout
    # A worker that serves encode.gpu (its heartbeat lists it): the job only waits its turn.
    publish(registry, WorkerHeartbeat(hostname="celery@kamado-gpu", queues=["encode.gpu"]), 30)
    assert kamado.json("status", job_id)["waiting"] == "queue position 1 in encode.gpu"
    assert "no live worker" not in kamado.run("status", env=wide).stdout


def test_the_scheduler_warns_once_while_a_queue_is_unserved_and_says_when_it_recovers(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from scheduler.unserved import REPEAT_S, UnservedWatch

    target = tmp_path / "a.ts"
    target.write_bytes(tiny_ts.read_bytes())
    kamado.json("enqueue", "--profile", "h264-intel", str(target))
    state = BrokerState(registry)
    last = "shutdown: no worker celery@kamado-gpu consuming encode.gpu within 600s"
    host = HostHeartbeat(name="host1", vm_state="shutoff", last_action=last)
    registry.client.set(host_key("host1"), host.model_dump_json(), ex=30)
    watch = UnservedWatch()
    with caplog.at_level("INFO", logger="kamado.scheduler"):
        (item,) = watch.check(registry, state, now=0.0)
        watch.check(registry, state, now=REPEAT_S - 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "host agent host1: VM shutoff" in warnings[0]
    assert "no worker celery@kamado-gpu consuming" in warnings[0]
    assert item.queue == "encode.gpu" and item.waiting == 1
    caplog.clear()
    with caplog.at_level("INFO", logger="kamado.scheduler"):
        watch.check(registry, state, now=REPEAT_S)
    assert [r.levelname for r in caplog.records] == ["WARNING"], "repeated while it lasts"
    publish(registry, WorkerHeartbeat(hostname="celery@kamado-gpu", queues=["encode.gpu"]), 30)
    caplog.clear()
    with caplog.at_level("INFO", logger="kamado.scheduler"):
        assert watch.check(registry, state, now=REPEAT_S + 5) == []
    assert "encode.gpu is consumed again" in caplog.text


# A name longer than half of an 80-column terminal, and one with brackets.
LONG = "ニュース7 「特集」 第12回 拡大版スペシャル.ts"
BROKEN = "壊れた録画 [字].ts"
ERROR = "ffmpeg: Invalid data found when processing input (the file ends after 3 packets)"


def admin_jobs(registry: Registry) -> dict[str, str]:
    """A done, a failed, a cancelled (once encoding at 39 fps), an encoding and a queued job."""
    names = {"done": LONG, "failed": BROKEN, "cancelled": "キャンセル.ts",
             "encoding": "エンコード中.ts", "queued": "待機 idle.ts"}  # fmt: skip
    ids = {}
    for state, name in names.items():
        job = Job.create(f"/rec/{name}", "h264-auto", priority=8 if state == "queued" else 2)
        registry.record(job, queue="encode.cpu")
        ids[state] = job.id
        if state == "queued":
            continue
        worker = "celery@gpu-vm" if state in ("done", "encoding") else "celery@cpu-box"
        assert registry.acquire(job.id, "a1", worker).status == "ok"
        live = Progress(percent=37.0, fps=39.0, eta_s=36.0, backend="vaapi")
        assert registry.update(job.id, "a1", live)
    result = {"backend": "vaapi", "size_bytes": 12_300_000, "duration_s": 60.0,
              "encode_seconds": 15.0, "average_fps": 120.0}  # fmt: skip
    assert registry.finish(ids["done"], "a1", JobState.DONE, result=result, backend="vaapi")
    assert registry.finish(ids["failed"], "a1", JobState.FAILED, error=ERROR, kind="input")
    registry.request_cancel(ids["cancelled"])
    assert registry.finish(
        ids["cancelled"], "a1", JobState.CANCELLED, error="cancelled while it ran"
    )
    return ids


@pytest.mark.parametrize("width", [80, 200])
def test_status_and_watch_at_80_and_200_columns_keep_names_errors_hosts_and_words(
    kamado: Kamado, registry: Registry, width: int
) -> None:
    ids = admin_jobs(registry)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": str(width)}
    rows = {r["id"]: r for r in kamado.json("status")}
    assert rows[ids["cancelled"]]["fps"] is None, "a cancelled job keeps no stale fps"
    assert rows[ids["encoding"]]["fps"] == 39.0
    for command in (("status",), ("watch", "--once")):
        shown = kamado.run(*command, env=env)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert all(len(line) <= width for line in lines), (command, width, shown.stdout)
        for name in (LONG, BROKEN, "キャンセル.ts", "待機 idle.ts"):
            assert any(name in line for line in lines), (command, name, shown.stdout)
        assert "celery@" not in shown.stdout and "celery " not in shown.stdout
        assert "cancelled while it ran" in shown.stdout, shown.stdout
        # The error: in the detail column, or (80 columns) on a line under the job's id.
        assert "ffmpeg: Invalid data" in shown.stdout, shown.stdout
        if width == 200:
            assert ERROR[:60] in shown.stdout, "the detail column, shortened at most"
            assert "12.3 MB · 60s video · 4.0× realtime" in shown.stdout
            assert "idle" in shown.stdout and "high" in shown.stdout, "priorities as words"
            assert "cpu-box" in shown.stdout
    frame = kamado.run("watch", "--once", env=env).stdout
    running = frame[: frame.index("waiting (")]
    assert "worker" in running and "gpu-vm" in running and "エンコード中.ts" in running
    recent = frame[frame.index("recent results") :]
    for name in (LONG, BROKEN, "キャンセル.ts"):
        assert name in recent, recent
    assert "cancelled while it ran" in recent and "ffmpeg: Invalid data" in recent
    assert ERROR in kamado.run("status", ids["failed"], env=env).stdout.replace("\n", "")
