"""EPGStation's own encode queue with kamado behind its presets: the encode button (POST
/api/encode), its progress column, its cancel (DELETE /api/encode/{id}), a failing
encode, and the auto-encode of a reservation recorded from the fake tuner."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.epgstation.conftest import AIRING, Station, encoded_files, sha256, wait_until
from tests.support.media import Clips, leftovers
from worker.encode.ffprobe import read_media
from worker.jobs import JobState

pytestmark = pytest.mark.integration


def test_the_encode_button_runs_kamado_with_progress_and_registers_its_mp4(
    station: Station, clips: Clips
) -> None:
    server = station.server
    recorded_id, video_id, ts = station.place(clips.long_1080i, "20261207-210000-ドラマ.m2ts")
    digest = sha256(ts)
    encode_id = server.encode(recorded_id, video_id, "KAMADO-SLOW")
    percents = server.follow_encode(encode_id, timeout=300)
    assert any(0 < p < 1 for p in percents), percents  # EPGStation's progress column moved
    assert percents == sorted(percents), percents
    wait_until(lambda: encoded_files(server, recorded_id), 15, "the encoded file in EPGStation")
    (encoded,) = encoded_files(server, recorded_id)
    output = server.recorded_dir / str(encoded["filename"])
    assert encoded["name"] == "KAMADO-SLOW" and output.name == "20261207-210000-ドラマ.mp4"
    media = read_media("ffprobe", output, reject_cut_ts=False)
    assert media.video is not None and media.video.codec == "h264" and media.video.height == 1080
    assert encoded["size"] == output.stat().st_size
    record = station.job_writing(output)
    assert record.state is JobState.DONE and record.job.profile == "slow"
    assert record.job.source == str(ts) and sha256(ts) == digest
    assert leftovers(server.recorded_dir) == []


def test_cancel_in_epgstation_cancels_the_kamado_job_and_leaves_no_file(
    station: Station, clips: Clips
) -> None:
    server = station.server
    recorded_id, video_id, ts = station.place(clips.long_1080i, "cancel me.m2ts")
    digest = sha256(ts)
    encode_id = server.encode(recorded_id, video_id, "KAMADO-SLOW")
    server.follow_encode(encode_id, timeout=300, cancel_after=0.0)
    output = server.recorded_dir / "cancel me.mp4"
    record = station.settled(output)
    assert record.state is JobState.CANCELLED
    time.sleep(2)  # EPGStation drops a cancelled encode's file a moment after
    assert not output.exists() and encoded_files(server, recorded_id) == []
    assert sha256(ts) == digest and leftovers(server.recorded_dir) == []
    assert [f["id"] for f in server.video_files(recorded_id)] == [video_id]


def test_an_encode_that_fails_in_the_worker_fails_in_epgstation_with_its_reason(
    station: Station, tmp_path: Path
) -> None:
    server = station.server
    silent = tmp_path / "audio only.m2ts"  # a recording whose video PID never came
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000", "-t", "3", "-c:a", "aac", "-f", "mpegts",
            str(silent)]  # fmt: skip
    subprocess.run(argv, check=True, timeout=60)
    recorded_id, video_id, _ts = station.place(silent, silent.name)
    encode_id = server.encode(recorded_id, video_id, "KAMADO")
    server.follow_encode(encode_id, timeout=120)
    output = server.recorded_dir / "audio only.mp4"
    record = station.settled(output)
    assert record.state is JobState.FAILED
    assert record.error and "video" in record.error.lower(), record.error
    time.sleep(2)
    assert not output.exists() and encoded_files(server, recorded_id) == []
    assert "audio only" in server.service_log("encode.log")  # EPGStation logged the failure


def test_a_reservation_on_the_fake_tuner_is_auto_encoded_by_kamado(station: Station) -> None:
    server = station.server
    start = int(time.time() * 1000) + 4000
    before = {r["id"] for r in server.recordings()}
    server.reserve("fake tuner", start, start + 12_000, "KAMADO")

    def encoded() -> list[dict[str, object]]:
        new = [r for r in server.recordings() if r["id"] not in before]
        return [f for r in new for f in encoded_files(server, r["id"])]

    wait_until(encoded, 240, "the recording's auto-encode through kamado")
    (mp4,) = encoded()
    output = server.recorded_dir / str(mp4["filename"])
    media = read_media("ffprobe", output, reject_cut_ts=False)
    assert media.video is not None and media.video.codec == "h264"
    assert media.duration_s is not None and media.duration_s > 5  # the programme, not a slice
    record = station.job_writing(output)
    assert record.state is JobState.DONE and record.job.profile == "quick"
    # EPGStation named the recording (and its file) after the hostile programme title
    assert record.job.recording is not None and record.job.recording.title == AIRING
    (recording,) = [r for r in server.recordings() if r["id"] not in before]
    ts = [f for f in recording["videoFiles"] if f["type"] == "ts"]
    assert len(ts) == 1 and (server.recorded_dir / ts[0]["filename"]).is_file()  # kept
    assert leftovers(server.recorded_dir) == []


@pytest.mark.parametrize(
    "filename",
    [
        "ｱ" * 72 + ".m2ts",  # 216 bytes of name, as EPGStation makes of long titles
        "ｱ" * 83 + ".m2ts",  # 254 bytes: OUTPUT (".mp4") is 253, one byte under the limit
        "-rf 'a' \"b\" $(id) `id` ; & | %TITLE%.m2ts",
        "..hidden.m2ts",
    ],
    ids=["216-bytes", "254-bytes", "shell-and-quotes", "dot-dot-prefix"],
)
def test_hostile_programme_names_encode_to_exactly_epgstations_output(
    station: Station, clips: Clips, filename: str
) -> None:
    server = station.server
    recorded_id, video_id, ts = station.place(clips.isdb_1080i, filename)
    digest = sha256(ts)
    encode_id = server.encode(recorded_id, video_id, "KAMADO")
    server.follow_encode(encode_id, timeout=180)
    wait_until(lambda: encoded_files(server, recorded_id), 15, "the encoded file")
    (encoded,) = encoded_files(server, recorded_id)
    output = server.recorded_dir / str(encoded["filename"])
    assert output.name == ts.stem + ".mp4" and output.is_file()
    assert station.job_writing(output).state is JobState.DONE
    assert sha256(ts) == digest and leftovers(server.recorded_dir) == []
