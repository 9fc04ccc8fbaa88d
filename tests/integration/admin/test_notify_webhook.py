"""Webhook notifications POSTed to a real local HTTP server, including one that fails first."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from worker.admin.notify import Notifier, signature
from worker.broker.registry import AttemptRecord, JobRecord
from worker.jobs import Job, JobState, now
from worker.settings.admin import NotifySettings

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """What the test server saw, and how it should answer the next requests."""

    fail_first: int = 0
    status_when_failing: int = 503
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.times.append(time.monotonic())
                receiver.requests.append(
                    {"headers": dict(self.headers.items()), "body": body, "path": self.path}
                )
                failing = len(receiver.requests) <= receiver.fail_first
            self.send_response(receiver.status_when_failing if failing else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/hooks/kamado?token=abc"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def failed_record(tmp_path: Path) -> JobRecord:
    job = Job.create(str(tmp_path / '録画 "A".ts'), "h264-auto")
    return JobRecord(
        job=job,
        state=JobState.FAILED,
        queue="encode.gpu",
        attempts=2,
        worker="vm1@guest",
        backend="vaapi",
        error='録画 "A".ts: no video stream',
        kind="input",
        updated_at=now(),
        history=[AttemptRecord(number=1, attempt_id="a1", worker="vm1@guest", started_at=now())],
    )


def settings_for(url: str, **fields: Any) -> NotifySettings:
    values: dict[str, Any] = {"url": url, "backoff": 0.1, "backoff_max": 1.0, "timeout": 2.0}
    values.update(fields)
    return NotifySettings(**values)


def test_a_failed_job_is_posted_as_json_with_job_reason_and_worker(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    state, url = receiver
    notifier = Notifier(settings_for(url, secret="hush"))
    record = failed_record(tmp_path)
    assert notifier.notify(record)
    assert notifier.flush(10)
    notifier.close()
    (request,) = state.requests
    assert request["path"] == "/hooks/kamado?token=abc"
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Kamado-Event"] == "job.failed"
    assert headers["X-Kamado-Signature"] == signature("hush", request["body"])
    body = json.loads(request["body"])
    assert body["event"] == "job.failed"
    assert body["job"]["id"] == record.id
    assert body["job"]["source_name"] == '録画 "A".ts'
    assert body["reason"] == '録画 "A".ts: no video stream'
    assert body["kind"] == "input"
    assert body["worker"] == "vm1@guest"


def test_a_receiver_that_fails_at_first_gets_the_notice_after_backing_off(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    state, url = receiver
    state.fail_first = 3
    notifier = Notifier(settings_for(url, max_attempts=6))
    assert notifier.notify(failed_record(tmp_path))
    assert notifier.flush(15)
    notifier.close()
    assert len(state.requests) == 4
    assert notifier.delivered == 1
    # One delivery id across retries, so the receiver can de-duplicate.
    assert len({r["headers"]["X-Kamado-Delivery"] for r in state.requests}) == 1
    gaps = [b - a for a, b in zip(state.times, state.times[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39  # 0.1, 0.2, 0.4 s


def test_a_client_error_is_not_retried_and_the_notice_is_abandoned(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    state, url = receiver
    state.fail_first, state.status_when_failing = 10, 404
    notifier = Notifier(settings_for(url))
    notifier.notify(failed_record(tmp_path))
    assert notifier.flush(10)
    notifier.close()
    assert len(state.requests) == 1
    assert notifier.abandoned == 1


def test_notify_returns_at_once_while_the_receiver_is_slow(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    state, url = receiver
    state.delay = 0.4
    notifier = Notifier(settings_for(url))
    started = time.monotonic()
    for _ in range(3):
        assert notifier.notify(failed_record(tmp_path))
    assert time.monotonic() - started < 0.2
    assert notifier.flush(10)
    notifier.close()
    assert len(state.requests) == 3


def test_an_unreachable_receiver_is_retried_until_it_comes_up(tmp_path: Path) -> None:
    from tests.support.redis_proc import free_port

    port = free_port()
    state = Receiver()
    notifier = Notifier(settings_for(f"http://127.0.0.1:{port}/", max_attempts=20))
    notifier.notify(failed_record(tmp_path))
    time.sleep(0.5)  # connection refused a few times
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert notifier.flush(10)
        notifier.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert notifier.delivered == 1
    assert len(state.requests) == 1


def test_success_is_posted_only_when_asked_for(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    state, url = receiver
    done = failed_record(tmp_path).model_copy(
        update={"state": JobState.DONE, "error": None, "kind": None, "result": {"output": "x"}}
    )
    quiet = Notifier(settings_for(url))
    assert not quiet.notify(done)
    loud = Notifier(settings_for(url, on_success=True))
    assert loud.notify(done)
    assert loud.flush(10)
    loud.close()
    (request,) = state.requests
    assert json.loads(request["body"])["event"] == "job.done"
