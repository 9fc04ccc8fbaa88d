"""kamado's task events never hold a job up: a frozen or killed Redis costs a bounded wait.

The worker's lease keeper thread sends progress events; if a send waited on a frozen
broker for the transport's 30 s socket timeout (twice, with retry_on_timeout), lease
renewals would wait too. These tests freeze (SIGSTOP) and kill a real redis-server.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.support.redis_proc import RedisProcess
from tests.support.workers import client_settings
from worker.admin import task_events
from worker.admin.task_events import QUIET_S, decode, send_update
from worker.celery_app import create_app

pytestmark = pytest.mark.integration
# Three tries of EVENT_TIMEOUT_S each (redis-py's retries) and their backoff, with room.
BOUND_S = 5.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[RedisProcess, Celery]]:
    server = RedisProcess(tmp_path / "redis").start()
    app = create_app(client_settings(server.url, tmp_path / "client"), server.url)
    try:
        yield server, app
    finally:
        task_events._quiet_until.pop(app, None)
        app.close()
        server.stop()


def received(url: str, send: Any) -> list[dict[str, Any]]:
    """The task-pending events published on the broker while ``send()`` runs.

    Read straight off Redis's pub/sub, where kombu publishes Celery's event exchange.
    """
    client = redis.Redis.from_url(url)
    subscriber = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    subscriber.psubscribe("*celeryev*")
    try:
        subscriber.get_message(timeout=1.0)  # the subscription is in place
        send()
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not got:
            message = subscriber.get_message(timeout=0.5)
            if message is None:
                continue
            envelope = json.loads(message["data"])
            body = envelope["body"]
            if envelope.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            event = json.loads(body)
            if event.get("type") == "task-pending":
                got.append(event)
        return got
    finally:
        subscriber.close()
        client.close()


def timed(call: Any) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


def test_an_event_reaches_a_receiver_with_kamado_s_fields(
    broker: tuple[RedisProcess, Celery],
) -> None:
    server, app = broker
    fields = {"state": "encoding", "percent": 37.0, "fps": 39.0}
    got = received(server.url, lambda: send_update(app, "w@h", "task-1", fields))
    assert [(e["uuid"], decode(e["result"])) for e in got] == [("task-1", fields)]


def test_a_frozen_redis_costs_one_bounded_wait_then_sends_are_skipped(
    broker: tuple[RedisProcess, Celery], caplog: pytest.LogCaptureFixture
) -> None:
    server, app = broker
    send_update(app, "w@h", "task-1", {"state": "staging"})
    server.pause()
    try:
        first = timed(lambda: send_update(app, "w@h", "task-1", {"state": "encoding"}))
        assert first < BOUND_S, f"a send waited {first:.1f} s on a frozen broker"
        # Within the quiet period the next progress reports do not wait at all.
        later = [timed(lambda: send_update(app, "w@h", "task-1", {})) for _ in range(5)]
        assert max(later) < 0.1, later
    finally:
        server.resume()
    assert "event task-pending not sent" in caplog.text
    # Once the quiet period is over, events flow again on the same app.
    task_events._quiet_until[app] = time.monotonic()
    got = received(server.url, lambda: send_update(app, "w@h", "task-1", {"state": "verifying"}))
    assert [decode(e["result"]) for e in got] == [{"state": "verifying"}]
    assert QUIET_S >= BOUND_S  # a frozen broker costs at most about half the time


def test_a_killed_redis_neither_raises_nor_hangs_a_send(
    broker: tuple[RedisProcess, Celery],
) -> None:
    server, app = broker
    server.kill()
    took = timed(lambda: send_update(app, "w@h", "task-1", {"state": "encoding"}))
    assert took < BOUND_S, f"a send waited {took:.1f} s with the broker gone"
