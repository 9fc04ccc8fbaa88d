"""Reading the next job out of a kombu Redis message, as a real publish wrote it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from worker.runtime.prefetch import job_of_message

# LRANGE of `encode.cpu\x06\x162` after worker.submit.publish of one job with priority 2
# (kombu's Redis transport, Celery protocol 2); only `origin` was replaced.
CAPTURED = (Path(__file__).parent / "kombu_encode_message.json").read_text().strip()


def test_the_job_of_a_real_published_message_is_read_from_its_body() -> None:
    job = job_of_message(CAPTURED)
    assert job is not None
    assert job.id == "fcd8c77f5a0f3504fa47"
    assert job.source == "sftp://recorder/夜のニュース 'live'.ts"
    assert job.profile == "h264-x264"
    assert job.priority == 2


def test_the_job_id_in_the_headers_matches_the_body() -> None:
    job = job_of_message(CAPTURED)
    headers = json.loads(CAPTURED)["headers"]
    assert job is not None and headers["id"].split("-", 1)[0] == job.id


def test_a_message_of_another_task_is_not_a_job() -> None:
    envelope = json.loads(CAPTURED)
    envelope["headers"]["task"] = "celery.ping"
    assert job_of_message(json.dumps(envelope)) is None


def test_a_body_that_is_not_a_job_is_ignored() -> None:
    envelope = json.loads(CAPTURED)
    bad = [[{"id": "not-hex", "source": ""}], {}, {}]
    envelope["body"] = base64.b64encode(json.dumps(bad).encode()).decode()
    assert job_of_message(json.dumps(envelope)) is None


def test_garbage_and_truncated_messages_are_ignored() -> None:
    for message in ("", "null", "[]", "{}", CAPTURED[: len(CAPTURED) // 2], '{"body": 5}'):
        assert job_of_message(message) is None


def test_a_body_sent_without_base64_is_read_too() -> None:
    envelope = json.loads(CAPTURED)
    envelope["body"] = base64.b64decode(envelope["body"]).decode()
    del envelope["properties"]["body_encoding"]
    job = job_of_message(json.dumps(envelope))
    assert job is not None and job.id == "fcd8c77f5a0f3504fa47"
