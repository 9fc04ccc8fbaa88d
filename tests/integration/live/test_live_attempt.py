"""A live attempt follows a recording written in real time and finishes right after it.

Real redis-server and sshd, the real encode task run in a thread of this process, real
ffmpeg writing the recording at real time (``-re``) as a tuner does, and real
ffmpeg/ffprobe encoding and verifying it.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.integration.live.conftest import Rig
from tests.support.live import recording_in_real_time
from tests.support.media import sha256
from worker.broker.keys import speed_key
from worker.broker.live import finish_recording, read_live
from worker.encode.ffprobe import read_media
from worker.jobs import JobState

pytestmark = pytest.mark.integration

SECONDS = 6.0


@pytest.mark.parametrize("where", ["local", "sftp"])
def test_a_live_attempt_finishes_seconds_after_the_recording_ends(
    where: str, request: pytest.FixtureRequest
) -> None:
    rig: Rig = request.getfixturevalue("rig" if where == "local" else "sftp_rig")
    rig.path.touch()  # EPGStation's start command runs once the file is open
    job = rig.submit(SECONDS)
    speeds = speed_key(socket.gethostname())  # the name a task run in this process has
    before = rig.registry.client.hgetall(speeds)
    with recording_in_real_time(rig.path, SECONDS) as writer:
        rig.start()
        time.sleep(SECONDS / 2)
        during = read_live(rig.registry, job.id)
        record = rig.registry.get(job.id)
        assert record is not None and record.state is JobState.ENCODING
        writer.wait(30)
    ended = time.monotonic()
    digest = sha256(rig.path)  # the finished recording, which the attempt only reads
    assert finish_recording(rig.registry, job.id) == "following"
    result = rig.wait()
    assert result.get("skipped") is None, result
    record = rig.registry.get(job.id, with_history=True)
    assert record is not None and record.state is JobState.DONE
    assert [a.outcome for a in record.history] == ["done"]
    after = rig.outcome["at"] - ended
    assert after < 10, f"output in place {after:.1f} s after the programme ended"
    ffprobe = rig.settings.encode.ffprobe
    out, source = read_media(ffprobe, Path(job.output)), read_media(ffprobe, rig.path)
    assert out.duration_s is not None and source.duration_s is not None
    assert abs(out.duration_s - source.duration_s) < 0.5
    assert out.video is not None and source.video is not None
    assert abs(out.video.display_aspect - source.video.display_aspect) < 0.01  # 4:3 kept
    assert result["source_duration_s"] == pytest.approx(source.duration_s, abs=0.1)
    assert during is not None and during.read_bytes > 0 and during.lag_s is not None
    assert sha256(rig.path) == digest
    # It ran at the recording's pace: that is not the worker's speed, which routes live jobs.
    assert rig.registry.client.hgetall(speeds) == before
    assert [p.name for p in rig.path.parent.iterdir()] == [rig.path.name]
    assert [p.name for p in rig.outputs.iterdir()] == [Path(job.output).name]
    assert not list((rig.settings.staging.scratch_dir).glob("live-*"))
    print(f"live ({where}): output verified and in place {after:.2f} s after the programme ended")
