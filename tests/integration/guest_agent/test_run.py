"""`kamado guest run` against a real redis-server: the queues it proved, and a failing GPU."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.guest_agent.guests import (
    consumed_queues,
    guest_argv,
    guest_env,
    running_guest,
)
from tests.support.media import Clips
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess
from worker.broker import presence
from worker.broker.counters import read_counters
from worker.broker.heartbeat import WorkerHeartbeat
from worker.broker.registry import Registry
from worker.cli.common import EXIT_NOTHING_TO_SERVE
from worker.jobs import Job, JobState
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.settings.model import Settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration

FAST_GUEST = {"KAMADO_GUEST__PROBE_SECONDS": "0.5", "KAMADO_GUEST__CHECK_INTERVAL": "0.2"}


def heartbeat(registry: Registry, hostname: str) -> WorkerHeartbeat | None:
    return next((b for b in presence.workers(registry) if b.hostname == hostname), None)


UNIT = Path(__file__).resolve().parents[3] / "deploy" / "systemd" / "kamado-guest-agent.service"


def test_without_hardware_it_exits_3_which_its_unit_does_not_restart(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    done = subprocess.run(
        guest_argv("run", "--hostname", "refused@localhost"),
        env=guest_env(redis_server.url, tmp_path, **FAST_GUEST),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # A distinct code: a restart every 10 s would only probe the missing GPU again.
    assert done.returncode == EXIT_NOTHING_TO_SERVE == 3, done.stderr
    prevent = next(
        line for line in UNIT.read_text().splitlines() if line.startswith("RestartPreventExit")
    )
    assert str(EXIT_NOTHING_TO_SERVE) in prevent.split("=", 1)[1].split()
    assert "nothing to serve" in done.stderr
    assert "guest.take_software_work is false" in done.stderr
    assert "No VA display found for device /dev/dri/renderD128." in done.stderr


def test_with_software_work_it_consumes_only_encode_cpu_and_its_heartbeat_says_why(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    env = {**FAST_GUEST, "KAMADO_GUEST__TAKE_SOFTWARE_WORK": "true",
           "KAMADO_GUEST__HEARTBEAT_INTERVAL": "0.5"}  # fmt: skip
    registry = Registry.connect(redis_server.url)
    with running_guest(redis_server.url, tmp_path, **env) as (app, hostname, _daemon):
        assert consumed_queues(app, hostname) == [QUEUE_CPU]
        assert wait_for(lambda: heartbeat(registry, hostname), timeout=10)
        beat = heartbeat(registry, hostname)
        assert beat is not None
        assert beat.queues == [QUEUE_CPU]
        assert [(b.backend, b.fps is not None and b.fps > 0) for b in beat.backends] == [
            ("x264", True)
        ]
        problems = {p.backend: p for p in beat.problems}
        assert set(problems) == {"qsv", "vaapi"}
        assert all(p.kind == "hardware" and "No VA display" in p.reason for p in problems.values())
    registry.close()


def suspended_in_heartbeat(registry: Registry, hostname: str) -> bool:
    beat = heartbeat(registry, hostname)
    return beat is not None and any(p.status == "suspended" for p in beat.problems)


def guard_status(registry: Registry, hostname: str) -> dict[str, Any]:
    from guest_agent.ledger import Ledger

    return Ledger(registry, hostname).status() or {}


def test_a_run_of_hardware_failures_takes_encode_gpu_away_and_re_probes(
    redis_server: RedisProcess, tmp_path: Path, clips: Clips
) -> None:
    config = tmp_path / "guest.toml"
    config.write_text(
        '[worker]\nbackends = ["vaapi", "x264"]\n'
        "[guest]\ntake_software_work = true\nhardware_failure_limit = 2\n"
        "check_interval = 0.2\nprobe_seconds = 0.5\nreprobe_interval = 600\n"
        "[jobs]\nretry_delay = 0\nmax_attempts = 3\n",
        encoding="utf-8",
    )
    state = tmp_path / "state"
    registry = Registry.connect(redis_server.url)
    client = Settings(broker_url=redis_server.url, state_dir=tmp_path / "client")
    env = {"KAMADO_GUEST__HEARTBEAT_INTERVAL": "0.5"}
    with running_guest(redis_server.url, state, "--config", str(config), **env) as (
        app,
        hostname,
        _daemon,
    ):
        # The config claims vaapi, so the guest serves the GPU queue at first.
        assert consumed_queues(app, hostname) == [QUEUE_CPU, QUEUE_GPU]
        source = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "ニュース 1.ts"))
        job = Job.create(str(source), "h264-intel")
        submit_job(app, registry, client, job)

        assert wait_for(lambda: QUEUE_GPU not in consumed_queues(app, hostname), timeout=40), (
            f"still on {QUEUE_GPU}: {guard_status(registry, hostname)}"
        )
        assert consumed_queues(app, hostname) == [QUEUE_CPU]
        assert wait_for(lambda: guard_status(registry, hostname).get("reprobes", 0) >= 1, 120)
        status = guard_status(registry, hostname)
        assert status["gpu"] == "suspended"
        # The guard samples the ledger every check_interval while attempts fail in ~0.15 s,
        # and a message already taken from encode.gpu keeps its hardware backend, so the
        # job's third attempt may be counted before the guard reads the ledger.
        found = re.search(r"(\d+) hardware failures in a row", status["reason"])
        assert found is not None, status["reason"]
        assert 2 <= int(found.group(1)) <= 3, status["reason"]
        assert "No VA display found" in status["reason"]
        assert status["usable"] == ["x264"]

        record = registry.get(job.id, with_history=True)
        assert record is not None
        failed = [a for a in record.history if a.worker == hostname and a.kind]
        assert len(failed) >= 2
        assert all(a.kind == "hardware" for a in failed)
        assert record.backend == "vaapi"

        assert wait_for(lambda: suspended_in_heartbeat(registry, hostname), timeout=10)
        beat = heartbeat(registry, hostname)
        assert beat is not None and beat.queues == [QUEUE_CPU]

        # While the GPU is suspended, a job that accepts hardware first but arrives on
        # encode.cpu (the scheduler's fallback) runs on x264, not on the failing GPU.
        other = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "ニュース 2.ts"))
        fallback = Job.create(str(other), "h264-auto")
        submit_job(app, registry, client, fallback, queue=QUEUE_CPU)
        assert wait_for(
            lambda: (r := registry.get(fallback.id)) is not None and r.state is JobState.DONE,
            timeout=60,
        ), registry.get(fallback.id, with_history=True)
        done = registry.get(fallback.id)
        assert done is not None and done.backend == "x264"
    registry.close()


def test_the_guest_worker_has_the_watchdog_that_revives_a_silent_consumer(
    redis_server: RedisProcess, tmp_path: Path, clips: Clips
) -> None:
    env = {**FAST_GUEST, "KAMADO_GUEST__TAKE_SOFTWARE_WORK": "true",
           "KAMADO_WORKER__WATCHDOG_SILENCE": "5"}  # fmt: skip
    registry = Registry.connect(redis_server.url)
    client = Settings(broker_url=redis_server.url, state_dir=tmp_path / "client")
    with running_guest(redis_server.url, tmp_path / "state", **env) as (app, hostname, daemon):
        assert consumed_queues(app, hostname) == [QUEUE_CPU]
        app.control.cancel_consumer(QUEUE_CPU, destination=[hostname], reply=True, timeout=5)
        assert consumed_queues(app, hostname) == []  # silent, with a free slot
        source = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "ニュース 3.ts"))
        job = Job.create(str(source), "h264-x264")
        submit_job(app, registry, client, job, queue=QUEUE_CPU)
        assert wait_for(
            lambda: (r := registry.get(job.id)) is not None and r.state is JobState.DONE,
            timeout=60,
        ), daemon.log_tail(40)
        assert "restarting its consumer (restart 1)" in daemon.log_tail(400)
        assert consumed_queues(app, hostname) == [QUEUE_CPU]
        assert read_counters(registry).watchdog == {(hostname, "restart"): 1}
    registry.close()
