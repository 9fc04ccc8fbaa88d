"""A push that fails after the encode is retried as a push by a real `kamado worker`."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import fill_disk
from tests.support.media import Clips, sha256
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess
from tests.support.workers import client_session, client_settings, running_worker
from worker import onebox
from worker.jobs import Job

pytestmark = pytest.mark.integration

SmallFs = Callable[[str, int], Path]


def test_a_full_remote_disk_after_the_encode_is_retried_as_a_push_of_the_kept_file(
    redis_server: RedisProcess,
    sshd: SshdProcess,
    clips: Clips,
    small_fs: SmallFs,
    tmp_path: Path,
) -> None:
    recorder = small_fs("worker_recorder", 8192)
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    source = sha256(recorder / "a.ts")
    # Room for the pre-encode check, not for the output: the push fails after the encode.
    hog = fill_disk(recorder, 16 * 1024)
    location = {
        "kind": "sftp", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "key_file": str(sshd.user_key), "known_hosts": str(sshd.known_hosts),
        "root": str(recorder),
    }  # fmt: skip
    staging = {
        "scratch_dir": str(tmp_path / "scratch"),
        "min_free_mb": 0,
        "retries": 0,
        "locations": {"recorder": location},
    }
    env = {
        "KAMADO_STAGING__SCRATCH_DIR": staging["scratch_dir"],
        "KAMADO_STAGING__MIN_FREE_MB": "0",
        "KAMADO_STAGING__RETRIES": "0",
        "KAMADO_STAGING__LOCATIONS": json.dumps(staging["locations"]),
        "KAMADO_JOBS__RETRY_DELAY": "3",
    }
    state = tmp_path / "state"
    job = Job.create("sftp://recorder/a.ts", "h264-x264")
    with running_worker(redis_server.url, state, **env) as (app, _hostname, daemon):
        settings = client_settings(redis_server.url, state, staging=staging)
        box = client_session(app, settings)
        outcomes: list[onebox.Outcome] = []
        waiter = threading.Thread(
            target=lambda: outcomes.extend(
                onebox.encode_files(box, [job], lambda _i: None, timeout=120)
            )
        )
        waiter.start()
        try:
            assert wait_for(lambda: any(r.error for r in box.registry.history(job.id)), 90)
            first = box.registry.history(job.id)[0]
            assert first.error and "free" in first.error, first.error
            kept = tmp_path / "scratch" / "outbox" / f"{job.id}.mp4"
            assert kept.is_file(), "the verified output waits for the retry"
            verified = sha256(kept)
            hog.unlink()  # the recorder's disk got room before the retry
            waiter.join(120)
        finally:
            box.registry.close()
        log = daemon.log_tail(200)
    assert outcomes and outcomes[0].ok, outcomes[0].error if outcomes else "no outcome"
    assert "pushing the verified output kept by an earlier attempt" in log
    assert sha256(recorder / "a.mp4") == verified
    assert sha256(recorder / "a.ts") == source
    assert sorted(p.name for p in recorder.iterdir()) == ["a.mp4", "a.ts"]
    assert not kept.exists()
