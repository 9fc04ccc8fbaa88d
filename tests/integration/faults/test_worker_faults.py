"""Killed workers and forced redelivery: the job still ends done exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.faults.conftest import Rig
from tests.support.media import sha256
from tests.support.procs import parent_of, pids_with, wait_for

pytestmark = pytest.mark.integration


def test_worker_killed_mid_encode_is_finished_by_another_worker(rig: Rig) -> None:
    source = rig.source()
    digest = sha256(source)
    _, _, first = rig.start_worker("a")
    rig.start_reconciler()
    job = rig.submit(source)
    held = rig.wait_encoding(job)
    (ffmpeg,) = pids_with(str(rig.out))
    first.stop(sig=signal.SIGKILL, grace=0)  # kill -9 of the worker's main process
    assert wait_for(lambda: ffmpeg not in pids_with(str(rig.out)), timeout=5)
    _, second_name, _ = rig.start_worker("b")
    record = rig.assert_done_once(job, source, digest)
    assert record.worker == second_name != held.worker
    outcomes = [a.outcome for a in record.history if a.number]
    assert outcomes == ["lost", "done"], record.history
    assert "stopped renewing its lease" in (record.history[0].error or "")


def test_pool_child_killed_mid_encode_is_retried(rig: Rig) -> None:
    source = rig.source()
    digest = sha256(source)
    rig.start_worker("a")
    rig.start_reconciler()
    job = rig.submit(source)
    rig.wait_encoding(job)
    (ffmpeg,) = pids_with(str(rig.out))
    os.kill(parent_of(ffmpeg), signal.SIGKILL)  # the prefork pool child running the task
    record = rig.assert_done_once(job, source, digest)
    numbered = [a.outcome for a in record.history if a.number]
    assert numbered == ["lost", "done"], record.history
    assert record.attempts == 2


def test_a_second_delivery_of_a_running_job_does_not_encode(rig: Rig) -> None:
    source = rig.source()
    digest = sha256(source)
    rig.start_worker("a")
    rig.start_worker("b")
    job = rig.submit(source)
    rig.wait_encoding(job)
    time.sleep(1.5)  # the message has now been unacked for longer than the timeout below
    # A client with a short visibility timeout sweeps the unacked messages, exactly as
    # kombu's Redis transport does after the timeout: the running job is delivered again.
    with rig.app.connection_for_write(transport_options={"visibility_timeout": 1}) as conn:
        conn.default_channel.qos.restore_visible(num=100)
    assert wait_for(
        lambda: any(a.outcome == "dropped" for a in rig.registry.history(job.id)), timeout=30
    ), "the redelivered message was never seen"
    assert len(pids_with(str(rig.out))) <= 1  # never two encodes of the job at once
    record = rig.assert_done_once(job, source, digest)
    dropped = [a for a in record.history if a.outcome == "dropped"]
    assert dropped and dropped[0].kind == "duplicate"
    assert record.attempts == 1
