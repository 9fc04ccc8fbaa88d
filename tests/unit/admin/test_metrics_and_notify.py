"""Metric families from a snapshot, the spool count, and webhook bodies and back-off."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from worker.admin.metrics import snapshot_families
from worker.admin.metrics_read import Running, Snapshot, Speed, read_spool
from worker.admin.notify import backoff_delay, payload, signature
from worker.broker.counters import Counters
from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.registry import JobRecord
from worker.jobs import Job, JobState, now
from worker.settings.admin import NotifySettings
from worker.settings.model import Settings, spool_dir


class Fixed:
    """A collector that yields the families of one snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        return snapshot_families(self.snap)


def exposition(snap: Snapshot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(Fixed(snap))
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_snapshot_becomes_parseable_metrics_with_the_documented_names() -> None:
    snap = Snapshot(
        jobs={"queued": 3, "done": 10},
        queues={"encode.gpu": 2, "encode.cpu": 1},
        unacked=1,
        workers=[WorkerHeartbeat(hostname="vm@g", queues=["encode.gpu"], current_job="j")],
        hosts=[HostHeartbeat(name="kvm", vm_state="shutoff", preflight_ok=False)],
        speeds=[Speed("vm@g", "qsv", 300.0, 10.0, 4)],
        running=[
            Running("vm@g", "qsv", 290.0, 9.5),
            Running("vm@g", "qsv", 10.0, 0.5),
        ],
        counters=Counters(
            attempt_failures={"hardware": 2, "lost": 1}, watchdog={("vm@g", "restart"): 3}
        ),
        spool=4,
        spool_oldest_age=12.5,
    )
    samples = exposition(snap)

    def get(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert get("kamado_jobs", state="queued") == 3
    assert get("kamado_queue_messages", queue="encode.gpu") == 2
    assert get("kamado_unacked_messages") == 1
    assert get("kamado_worker_busy", worker="vm@g") == 1
    assert get("kamado_vm_state", host="kvm", state="shutoff") == 1
    assert get("kamado_vm_running", host="kvm") == 0
    assert get("kamado_host_preflight_ok", host="kvm") == 0
    assert get("kamado_encode_fps", worker="vm@g", backend="qsv") == 300
    assert get("kamado_encoded_jobs_total", worker="vm@g", backend="qsv") == 4
    assert get("kamado_running_jobs", worker="vm@g", backend="qsv") == 2
    assert get("kamado_running_encode_fps", worker="vm@g", backend="qsv") == 300
    assert get("kamado_attempt_failures_total", reason="hardware") == 2
    assert get("kamado_watchdog_actions_total", worker="vm@g", action="restart") == 3
    assert get("kamado_spool_submissions") == 4


def test_the_spool_counts_json_submissions_and_the_age_of_the_oldest(tmp_path: Path) -> None:
    assert read_spool(tmp_path / "missing") == (0, 0.0)
    for n in range(3):
        (tmp_path / f"{n}.json").write_text("{}", encoding="utf-8")
    (tmp_path / "x.json.tmp").write_text("{", encoding="utf-8")
    os.utime(tmp_path / "0.json", (1000.0, 1000.0))
    count, age = read_spool(tmp_path, now=1060.0)
    assert count == 3 and age == 60.0


def test_the_spool_is_under_the_state_dir_unless_configured(tmp_path: Path) -> None:
    assert spool_dir(Settings(state_dir=tmp_path)) == tmp_path / "spool"
    configured = Settings(state_dir=tmp_path, scheduler={"spool_dir": str(tmp_path / "q")})
    assert spool_dir(configured) == tmp_path / "q"


def test_the_webhook_body_names_the_job_the_reason_and_the_worker() -> None:
    job = Job.create("/srv/recorded/番組 A.ts", "h264-auto")
    record = JobRecord(
        job=job,
        state=JobState.FAILED,
        attempts=3,
        worker="vm1@guest",
        error="番組 A.ts: gave up after 3 attempts",
        kind="hardware",
        updated_at=now(),
    )
    body = payload(record)
    assert body["event"] == "job.failed"
    assert body["job"]["id"] == job.id and body["job"]["source_name"] == "番組 A.ts"
    assert body["reason"].startswith("番組 A.ts")
    assert body["worker"] == "vm1@guest" and body["kind"] == "hardware"
    json.dumps(body)  # plain JSON all the way down


def test_the_signature_is_an_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    assert signature("k", b"{}") == f"sha256={expected}"


def test_back_off_doubles_up_to_the_cap_and_honours_retry_after() -> None:
    settings = NotifySettings(url="http://x", backoff=2, backoff_max=30)
    assert [backoff_delay(settings, n, None) for n in range(1, 6)] == [2, 4, 8, 16, 30]
    assert backoff_delay(settings, 1, 10) == 10
    assert backoff_delay(settings, 1, 3600) == 30


def test_heartbeat_age_is_measured_from_the_heartbeat_time() -> None:
    beat = HostHeartbeat(name="kvm", vm_state="running", updated_at=now() - timedelta(seconds=42))
    samples = exposition(Snapshot(hosts=[beat]))
    age = samples[("kamado_host_heartbeat_age_seconds", frozenset({("host", "kvm")}))]
    assert 41 <= age < 60
