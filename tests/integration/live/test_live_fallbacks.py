"""Never worse than today: whatever stops a live attempt, the job runs as an ordinary job.

Each case stops a live attempt a different real way (the recorder's verdict, the
programme running past its end, the file truncated or replaced, the SFTP link cut, a
cancel) and checks the same promise: no output and no temporary file anywhere, the
recording byte for byte as the recorder wrote it, and the job where the live path's
design sends it: held for the finish hook, or published again on its ordinary queue
exactly once.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from celery.exceptions import Ignore

from tests.integration.live.conftest import Rig, make_rig
from tests.support.live import recorder_argv, recording_in_real_time
from tests.support.media import sha256
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess
from worker import process
from worker.broker.live import Phase, finish_recording, read_live
from worker.jobs import JobState

pytestmark = pytest.mark.integration

SECONDS = 4.0
LONGER = 8.0  # still recording once the feed reads over SFTP, even on a loaded machine


def untouched(rig: Rig, digest: str) -> None:
    """No output, no temporary file, the recording unchanged, no live scratch left."""
    assert list(rig.outputs.iterdir()) == []
    assert [p.name for p in rig.path.parent.iterdir()] == [rig.path.name]
    assert sha256(rig.path) == digest
    assert not list(rig.settings.staging.scratch_dir.glob("live-*"))


def record_then_stop(rig: Rig, seconds: float = SECONDS) -> str:
    """Write the whole recording while the live attempt follows it; its sha256."""
    with recording_in_real_time(rig.path, seconds) as writer:
        rig.start()
        writer.wait(30)
    return sha256(rig.path)


def held_for_the_finish_hook(rig: Rig, words: str) -> None:
    assert rig.job is not None
    record = rig.registry.get(rig.job.id, with_history=True)
    assert record is not None and record.state is JobState.HELD, record
    assert words in (record.error or ""), record.error
    state = read_live(rig.registry, rig.job.id)
    assert state is not None and state.phase is Phase.ABANDONED
    assert rig.waiting_messages() == 0
    # A stale delivery of it (the chosen worker's message) does not start it.
    attempts = record.attempts
    rig.start()
    assert "held" in rig.wait()["skipped"]
    again = rig.registry.get(rig.job.id)
    assert again is not None and again.state is JobState.HELD and again.attempts == attempts
    # The finish hook then releases it as an ordinary job (scheduler.live does the publish).
    assert finish_recording(rig.registry, rig.job.id) == "release"


@pytest.mark.parametrize(
    ("reject", "after", "state", "messages"),
    [
        ("the recorder reported the recording as failed", "queue", JobState.QUEUED, 1),
        ("120 drops (threshold 10)", "hold", JobState.HELD, 0),
        ("the recorder reported the recording as failed", "cancel", JobState.CANCELLED, 0),
    ],
)
def test_a_failed_or_damaged_recording_stops_the_live_attempt(
    rig: Rig, reject: str, after: str, state: JobState, messages: int
) -> None:
    job = rig.submit(SECONDS)
    digest = record_then_stop(rig)
    assert finish_recording(rig.registry, job.id, reject=reject, after=after) == "stopping"  # type: ignore[arg-type]
    result = rig.wait()
    assert result["live"] == after and "live attempt stopped" in result["skipped"]
    record = rig.registry.get(job.id)
    assert record is not None and record.state is state
    assert rig.waiting_messages() == messages
    untouched(rig, digest)


def test_no_finish_hook_by_the_programme_end_plus_the_margin(rig: Rig) -> None:
    rig.submit(SECONDS, deadline=time.time() + 2)
    digest = record_then_stop(rig)
    rig.wait()
    held_for_the_finish_hook(rig, "no finish hook by the programme's end")
    untouched(rig, digest)


def test_a_truncated_recording(rig: Rig) -> None:
    rig.submit(SECONDS)
    digest = record_then_stop(rig)
    time.sleep(1)  # the feed has caught up with the end
    with rig.path.open("r+b") as fh:
        fh.truncate(rig.path.stat().st_size // 2)
    digest = sha256(rig.path)
    rig.wait()
    held_for_the_finish_hook(rig, "shrank")
    untouched(rig, digest)


def test_a_recording_replaced_by_another_file(rig: Rig, tmp_path: Path) -> None:
    rig.submit(SECONDS)
    with recording_in_real_time(rig.path, SECONDS) as writer:
        rig.start()
        time.sleep(2)
        writer.kill()
    other = tmp_path / "other.ts"
    process.run(recorder_argv(other, 1), timeout=60)
    os.replace(other, rig.path)
    digest = sha256(rig.path)
    rig.wait()
    held_for_the_finish_hook(rig, "replaced")
    untouched(rig, digest)


def test_over_sftp_a_replaced_recording_is_seen_at_the_end(sftp_rig: Rig, tmp_path: Path) -> None:
    rig = sftp_rig
    job = rig.submit(SECONDS)
    record_then_stop(rig)
    other = tmp_path / "other.ts"
    shutil.copyfile(rig.path, other)
    with other.open("r+b") as fh:  # same size and more, other first bytes
        fh.write(b"\x47" + os.urandom(187))
        fh.seek(0, os.SEEK_END)
        fh.write(b"\x47" + bytes(187))
    os.replace(other, rig.path)
    digest = sha256(rig.path)
    assert finish_recording(rig.registry, job.id) == "following"
    result = rig.wait()
    assert result["live"] == "queue" and "replaced" in result["skipped"]
    record = rig.registry.get(job.id)
    assert record is not None and record.state is JobState.QUEUED
    assert rig.waiting_messages() == 1  # published again as an ordinary job, once
    untouched(rig, digest)


def cut_the_link_while_encoding(rig: Rig, sshd: SshdProcess) -> None:
    """Wait until the feed reads over SFTP while ffmpeg encodes, then kill its sshd."""
    assert rig.job is not None
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        record = rig.registry.get(rig.job.id)
        state = read_live(rig.registry, rig.job.id)
        encoding = record is not None and record.state is JobState.ENCODING
        if encoding and state is not None and state.read_bytes > 0 and sshd.session_pids():
            assert sshd.kill_sessions() > 0
            return
        time.sleep(0.1)
    raise AssertionError("the live attempt never read over SFTP")


def test_a_dropped_sftp_link_resumes_where_it_stopped(sftp_rig: Rig, sshd: SshdProcess) -> None:
    rig = sftp_rig
    job = rig.submit(LONGER)
    with recording_in_real_time(rig.path, LONGER) as writer:
        rig.start()
        cut_the_link_while_encoding(rig, sshd)
        writer.wait(30)
    digest = sha256(rig.path)
    assert finish_recording(rig.registry, job.id) == "following"
    result = rig.wait()
    assert result.get("skipped") is None, result
    record = rig.registry.get(job.id)
    assert record is not None and record.state is JobState.DONE
    assert sha256(rig.path) == digest


def test_an_sftp_link_that_stays_down(
    redis_server: RedisProcess, tmp_path: Path, sshd: SshdProcess
) -> None:
    rig = make_rig(redis_server, tmp_path, "sftp", sshd)
    rig.settings = rig.settings.model_copy(
        update={"staging": rig.settings.staging.model_copy(update={"retries": 0})}
    )
    try:
        rig.submit(LONGER)
        with recording_in_real_time(rig.path, LONGER) as writer:
            rig.start()
            cut_the_link_while_encoding(rig, sshd)
            writer.wait(30)
        digest = sha256(rig.path)
        rig.wait()
        held_for_the_finish_hook(rig, "live attempt stopped")
        untouched(rig, digest)
    finally:
        rig.registry.close()
        rig.app.close()


def test_a_cancelled_live_job(rig: Rig) -> None:
    job = rig.submit(SECONDS)
    with recording_in_real_time(rig.path, SECONDS) as writer:
        rig.start()
        time.sleep(2)
        assert rig.registry.request_cancel(job.id) == "cancelling"
        writer.wait(30)
    digest = sha256(rig.path)
    with pytest.raises(Ignore):  # the task ends REVOKED, as any cancelled job's
        rig.wait()
    record = rig.registry.get(job.id)
    assert record is not None and record.state is JobState.CANCELLED
    assert rig.waiting_messages() == 0
    untouched(rig, digest)
