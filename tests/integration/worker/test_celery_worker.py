"""Jobs through a real Celery worker process on a real redis-server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.support.arib import captioned_ts
from tests.support.media import Clips, leftovers, sha256
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess
from tests.support.workers import client_session, client_settings, running_worker
from worker import onebox
from worker.admin.task_events import UPDATE_EVENT, decode
from worker.broker import presence
from worker.broker.heartbeat import WorkerHeartbeat
from worker.broker.registry import Registry
from worker.captions import CaptionStatus, caption_support
from worker.jobs import ENCODE_TASK, Job
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Celery, str, Settings]]:
    state = tmp_path_factory.mktemp("worker-state")
    with running_worker(redis_server.url, state) as (app, hostname, _daemon):
        yield app, hostname, client_settings(redis_server.url, state)


def run(app: Celery, settings: Settings, job: Job) -> tuple[onebox.Outcome, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def update(item: onebox.Tracked) -> None:
        if item.meta:
            seen.append(dict(item.meta))

    box = client_session(app, settings)
    (outcome,) = onebox.encode_files(box, [job], update, timeout=120)
    box.registry.close()
    return outcome, seen


def test_a_job_runs_through_the_worker_to_a_verified_output(
    worker: tuple[Celery, str, Settings], clips: Clips, tmp_path: Path
) -> None:
    app, hostname, settings = worker
    source = Path(shutil.copy2(clips.long_1080i, tmp_path / "録画 one.ts"))
    before = sha256(source)
    outcome, seen = run(app, settings, Job.create(str(source), "h264-auto"))
    assert outcome.ok, outcome.error
    assert outcome.result is not None
    assert outcome.result.backend == "x264"  # h264-auto on a worker with x264 only
    assert outcome.result.worker == hostname
    assert Path(outcome.result.output).is_file()
    assert sha256(source) == before
    assert leftovers(tmp_path) == []
    encoding = [m for m in seen if m.get("state") == "encoding"]
    assert encoding, f"no progress seen: {seen}"
    assert all(m["backend"] == "x264" for m in encoding)
    assert any(0 < m["percent"] < 100 for m in encoding) or any(
        m["percent"] == 100 for m in encoding
    )


def test_a_text_file_named_ts_fails_with_its_name_and_the_reason(
    worker: tuple[Celery, str, Settings], clips: Clips, tmp_path: Path
) -> None:
    app, _, settings = worker
    source = Path(shutil.copy2(clips.text_ts, tmp_path / "not video.ts"))
    before = sha256(source)
    outcome, _ = run(app, settings, Job.create(str(source), "h264-x264"))
    assert not outcome.ok
    assert outcome.error is not None
    assert "not video.ts" in outcome.error
    assert "Invalid data found when processing input" in outcome.error
    assert sha256(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not video.ts"]


def test_a_hardware_only_job_is_never_encoded_on_the_cpu(
    worker: tuple[Celery, str, Settings], clips: Clips, tmp_path: Path
) -> None:
    app, _, settings = worker
    source = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "a.ts"))
    outcome, _ = run(app, settings, Job.create(str(source), "h264-intel"))
    assert not outcome.ok
    assert outcome.error is not None and "no accepted backend is proven" in outcome.error
    assert not source.with_suffix(".mp4").exists()


def test_a_malformed_task_payload_fails_with_a_clear_reason(
    worker: tuple[Celery, str, Settings],
) -> None:
    app, _, _ = worker
    result = app.send_task(ENCODE_TASK, args=[{"id": "x"}], queue="encode.cpu")
    with pytest.raises(Exception, match="bad job payload: id"):
        result.get(timeout=30, propagate=True)
    result.forget()


def test_the_running_worker_loaded_the_settings_long_encodes_need(
    worker: tuple[Celery, str, Settings],
) -> None:
    app, hostname, settings = worker
    conf = app.control.inspect(destination=[hostname], timeout=5).conf()[hostname]
    assert conf["task_acks_late"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_cancel_long_running_tasks_on_connection_loss"] is False  # the lease does it
    assert conf["worker_send_task_events"] is True
    assert conf["accept_content"] == ["json"]
    assert conf["task_serializer"] == "json"
    visibility = conf["broker_transport_options"]["visibility_timeout"]
    assert visibility == settings.broker.visibility_timeout > conf["task_time_limit"]
    assert conf["task_soft_time_limit"] < conf["task_time_limit"]
    queues = app.control.inspect(destination=[hostname], timeout=5).active_queues()[hostname]
    # and its own queue, where the scheduler sends a live job it chose this worker for
    assert {q["name"] for q in queues} == {"encode.gpu", "encode.cpu", f"{hostname}.dq2"}


def test_progress_reaches_event_listeners_such_as_flower(
    worker: tuple[Celery, str, Settings], clips: Clips, tmp_path: Path
) -> None:
    app, _, settings = worker
    events: list[dict[str, Any]] = []
    ready = threading.Event()
    receivers: list[Any] = []

    def listen() -> None:
        with app.connection_for_read() as conn:
            receiver = app.events.Receiver(
                conn, handlers={UPDATE_EVENT: events.append, "task-succeeded": events.append}
            )
            receivers.append(receiver)
            ready.set()
            with contextlib.suppress(socket.timeout, TimeoutError):
                receiver.capture(limit=None, timeout=None, wakeup=False)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(10)
    source = Path(shutil.copy2(clips.long_1080i, tmp_path / "b.ts"))
    outcome, _ = run(app, settings, Job.create(str(source), "h264-x264"))
    assert outcome.ok
    # kamado's fields ride in task-pending events, so the task stays STARTED in Flower.
    updates = [e for e in events if e["type"] == UPDATE_EVENT]
    assert updates, f"no {UPDATE_EVENT} event was sent"
    assert {e["uuid"].rsplit("-", 1)[0] for e in updates} == {outcome.job.id}
    fields = [decode(e.get("result")) for e in updates]
    encoding = [f for f in fields if f and f["state"] == "encoding"]
    assert encoding, fields
    assert {"percent", "fps", "state", "backend", "eta_s"} <= set(encoding[-1])
    receivers[0].should_stop = True
    thread.join(10)
    assert not thread.is_alive()


def test_the_worker_publishes_a_heartbeat_with_its_backends_and_measured_speed(
    worker: tuple[Celery, str, Settings], clips: Clips, tmp_path: Path
) -> None:
    app, hostname, settings = worker
    source = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "c.ts"))
    outcome, _ = run(app, settings, Job.create(str(source), "h264-x264"))
    assert outcome.ok
    registry = Registry.connect(str(app.conf.broker_url))
    try:
        # The heartbeat is published every 5 s: wait for one written after the job ended.
        assert wait_for(lambda: beat_of(registry, hostname).current_job is None, 15)
        assert wait_for(lambda: any(b.fps for b in beat_of(registry, hostname).backends), 15)
        beat = beat_of(registry, hostname)
        assert beat.queues == ["encode.gpu", "encode.cpu"]
        (x264,) = beat.backends
        assert x264.backend == "x264" and x264.fps and x264.fps > 1 and x264.realtime
        assert beat.current_job is None
    finally:
        registry.close()


def beat_of(registry: Registry, hostname: str) -> WorkerHeartbeat:
    (beat,) = [b for b in presence.workers(registry) if b.hostname == hostname]
    return beat


def test_captions_kept_by_the_worker_come_back_in_the_result_and_its_heartbeat_says_so(
    worker: tuple[Celery, str, Settings], tmp_path: Path
) -> None:
    app, hostname, settings = worker
    captioned = captioned_ts(tmp_path / "字幕.ts", units=9)
    outcome, _ = run(app, settings, Job.create(str(captioned.path), "h264-x264"))
    assert outcome.ok, outcome.error
    assert outcome.result is not None and outcome.result.captions is not None
    assert outcome.result.captions.status is CaptionStatus.KEPT
    assert outcome.result.captions.streams == 1
    registry = Registry.connect(str(app.conf.broker_url))
    try:
        assert beat_of(registry, hostname).captions == caption_support("ffmpeg")
    finally:
        registry.close()
