"""EPGStation's own start and finish commands drive a live job: the real EPGStation 2.7.3
records from its fake tuner (ffmpeg writing at real time), fires ``recordingStartCommand``
(`kamado hook epgstation --start`) and then ``recordingFinishCommand`` (`kamado hook
epgstation`), and the session's real worker follows the recording as it grows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.epgstation.conftest import KAMADO, Station, wait_until
from tests.support.epgstation import EpgstationServer
from tests.support.media import Clips
from worker.broker.live import Phase, read_live
from worker.broker.registry import JobRecord
from worker.celery_app import create_app
from worker.encode.ffprobe import read_media
from worker.jobs import Job, JobState
from worker.settings.model import load_settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration


@pytest.fixture
def live_hooks(station: Station) -> Iterator[EpgstationServer]:
    """The session's EPGStation restarted with kamado's start and finish hooks."""
    server = station.server
    server.stop()
    server.start_command = f"{KAMADO} hook epgstation --start --config {station.config}"
    server.finish_command = f"{KAMADO} hook epgstation --config {station.config}"
    try:
        yield server.start()
    finally:
        server.stop()
        server.start_command = server.finish_command = None
        server.start()


def warm_up(station: Station, clips: Clips, tmp_path: Path) -> None:
    """One ordinary job of the hooks' profile, so the worker has a measured speed for it."""
    settings = load_settings(station.config)
    clip = Path(clips.isdb_1080i)
    source = tmp_path / "warm-up.ts"
    source.write_bytes(clip.read_bytes())
    app = create_app(settings)
    try:
        job = Job.create(str(source), settings.encode.default_profile)
        job = submit_job(app, station.registry, settings, job).job
    finally:
        app.close()
    wait_until(
        lambda: (r := station.registry.get(job.id)) is not None and r.state.final, 120, "warm-up"
    )
    record = station.registry.get(job.id)
    assert record is not None and record.state is JobState.DONE, record


def live_job(station: Station) -> JobRecord | None:
    found = [r for r in station.registry.list() if r.job.live]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_epgstation_starts_a_live_job_and_its_finish_hook_completes_it(
    station: Station, live_hooks: EpgstationServer, clips: Clips, tmp_path: Path
) -> None:
    server = live_hooks
    warm_up(station, clips, tmp_path)
    start = int(time.time() * 1000) + 3000
    server.reserve("live", start, start + 12_000, None)
    wait_until(lambda: live_job(station) is not None, 60, "the start hook's live job")
    record = live_job(station)
    assert record is not None
    state = read_live(station.registry, record.id)
    assert state is not None and state.phase is Phase.RECORDING, state  # a worker follows it
    wait_until(
        lambda: (r := station.registry.get(record.id)) is not None and r.state.final,
        180,
        "the live job to end",
    )
    done = station.registry.get(record.id, with_history=True)
    assert done is not None and done.state is JobState.DONE, done
    assert [a.outcome for a in done.history] == ["done"]  # followed live, one attempt
    ended = read_live(station.registry, record.id)
    assert ended is not None and ended.phase is Phase.FINISHED
    source = Path(done.job.source)
    assert source.parent == server.recorded_dir and source.suffix == ".m2ts"
    out = read_media("ffprobe", Path(done.job.output))
    recorded = read_media("ffprobe", source, reject_cut_ts=False)
    assert out.video is not None and out.video.codec == "h264"
    assert out.duration_s is not None and recorded.duration_s is not None
    assert abs(out.duration_s - recorded.duration_s) < 1.0
