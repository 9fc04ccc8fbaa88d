"""The one-box session's quick stop: an idle local worker is killed, and nothing is lost."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.support.media import Clips, sha256
from worker import onebox, process
from worker.broker.embedded import EmbeddedBroker
from worker.broker.keys import worker_key
from worker.encode.ffprobe import parse_media, run_ffprobe
from worker.jobs import Job, JobState
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


def test_an_idle_local_worker_is_dropped_at_once_and_every_job_stays_done(
    clips: Clips, tmp_path: Path
) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    sources = [Path(shutil.copy2(clips.isdb_1080i, rec / f"番組 {n}.ts")) for n in range(2)]
    before = {s: sha256(s) for s in sources}
    out = tmp_path / "out"
    out.mkdir()
    settings = Settings(state_dir=tmp_path / "state", worker={"backends": ["x264"]})
    jobs = [Job.create(str(s), settings.encode.default_profile, output_dir=out) for s in sources]
    with onebox.session(settings, output_dir=out, concurrency=2) as box:
        worker = box.worker
        assert worker is not None
        outcomes = onebox.encode_files(box, jobs, lambda _t: None)
        ended = time.monotonic()
    stopped = time.monotonic() - ended
    # The warm stop took over two seconds; the drop, the broker's stop included, far less.
    assert stopped < 1.5, stopped
    assert not process.group_running(worker.daemon.pid)  # zombies at most, for init to reap
    assert [o.state for o in outcomes] == [JobState.DONE, JobState.DONE]
    for outcome in outcomes:
        assert outcome.result is not None
        info = parse_media(
            Path(outcome.result.output), run_ffprobe("ffprobe", Path(outcome.result.output))
        )
        assert info.duration_s == pytest.approx(outcome.result.duration_s, abs=0.1)
    assert {s: sha256(s) for s in sources} == before
    # On the broker, started again from its saved state: the jobs are done, no message is
    # waiting or unacknowledged (nothing would run again), the heartbeat is gone.
    with EmbeddedBroker(settings.state_dir) as broker:
        registry = onebox.open_registry(settings, broker.url)
        try:
            for job in jobs:
                record = registry.get(job.id)
                assert record is not None and record.state is JobState.DONE
            assert onebox.quiescent(registry, [j.id for j in jobs], timeout=0)
            client = registry.client
            assert client.llen("encode.cpu") == 0 and client.llen("encode.gpu") == 0
            assert not client.exists(worker_key(worker.hostname))
        finally:
            registry.close()
