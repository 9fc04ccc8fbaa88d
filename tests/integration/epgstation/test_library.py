"""kamado in charge of the encode (EPGStation's finish hook, `kamado scheduler run`), with
its outputs registered in EPGStation's library ([scheduler.epgstation] url): each output
becomes a video file of its recording, and one that finished while EPGStation was away is
registered when it comes back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.epgstation.api import EpgstationApi, Upload
from tests.integration.epgstation.conftest import KAMADO, Station, wait_until
from tests.integration.scheduler.conftest import ROOT
from tests.support.epgstation import EpgstationServer
from tests.support.media import Clips
from worker.broker import keys
from worker.broker.registry import JobRecord, Registry
from worker.encode.ffprobe import read_media
from worker.jobs import JobState

pytestmark = pytest.mark.integration


@pytest.fixture
def finish_hook(station: Station) -> Iterator[EpgstationServer]:
    """The session's EPGStation restarted with kamado's finish hook, and a scheduler
    service; afterwards the server runs without the hook again."""
    server = station.server
    argv = [sys.executable, "-m", "worker.cli.main", "scheduler", "run",
            "--config", str(station.config)]  # fmt: skip
    service = subprocess.Popen(
        argv, cwd=ROOT, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )  # fmt: skip
    server.stop()
    server.finish_command = f"{KAMADO} hook epgstation --config {station.config}"
    try:
        yield server.start()
    finally:
        server.stop()
        server.finish_command = None
        server.start()
        service.terminate()
        _, err = service.communicate(timeout=60)
        assert service.returncode == 0, err


def new_job(registry: Registry, before: set[str]) -> JobRecord | None:
    records = [r for r in registry.list() if r.id not in before]
    assert len(records) <= 1, records  # one recording, one job
    return records[0] if records else None


def test_the_finish_hooks_output_is_registered_even_after_epgstation_was_away(
    station: Station, finish_hook: EpgstationServer
) -> None:
    server, registry = finish_hook, station.registry
    before = {r.id for r in registry.list()}
    start = int(time.time() * 1000) + 3000
    server.reserve("finish hook", start, start + 10_000, None)
    wait_until(lambda: new_job(registry, before) is not None, 120, "the finish hook's job")
    server.stop()  # EPGStation goes away while kamado encodes
    wait_until(
        lambda: (r := new_job(registry, before)) is not None and r.state.final, 180, "the encode"
    )
    record = new_job(registry, before)
    assert record is not None and record.state is JobState.DONE, record
    assert record.job.recording is not None and record.job.recording.recorded_id
    recorded_id = int(record.job.recording.recorded_id)
    output = Path(record.job.output)
    media = read_media("ffprobe", output, reject_cut_ts=False)
    assert media.video is not None and media.video.codec == "h264"
    time.sleep(3)  # the registrar tries (EPGStation refuses the connection) and waits
    assert (record.result or {}).get("epgstation_video_file_id") is None
    assert registry.client.hexists(keys.EPGSTATION_PENDING, record.id)  # still to register
    server.start()

    def registered() -> int | None:
        current = registry.get(record.id)
        video_id = ((current and current.result) or {}).get("epgstation_video_file_id")
        return int(video_id) if video_id is not None else None

    wait_until(registered, 90, "the registration once EPGStation is back")
    video_id = registered()
    files = {f["id"]: f for f in server.video_files(recorded_id)}
    assert video_id in files, files
    registered_file = files[video_id]
    assert registered_file["type"] == "encoded" and registered_file["name"] == "kamado"
    assert registered_file["size"] == output.stat().st_size
    assert (server.recorded_dir / str(registered_file["filename"])).is_file()
    assert not registry.client.hexists(keys.EPGSTATION_PENDING, record.id)
    # The recording itself is still EPGStation's: kamado only added a file to it.
    assert [f["type"] for f in server.video_files(recorded_id)].count("ts") == 1


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("引用 \"a\" 'b'.mp4", "引用 \"a\" 'b'.mp4"),  # quotes kept as they are
        ("C:\\dir\\番組.mp4", "C：￥dir￥番組.mp4"),  # EPGStation's own stand-ins
        ("Z: 最終回.mp4", "Z： 最終回.mp4"),  # not a drive letter to drop
        ("ｱ" * 83 + ".mp4", "ｱ" * 82 + ".mp4"),  # 253 bytes: cut to leave room for "(1)"
    ],
    ids=["quotes", "backslashes", "drive-like", "253-bytes"],
)
def test_an_upload_keeps_the_outputs_name_in_epgstations_library(
    station: Station, clips: Clips, tmp_path: Path, name: str, stored: str
) -> None:
    """What kamado's registrar sends is what EPGStation stores and lists, also when the
    name is taken (kamado's own output sits in the same directory): EPGStation's
    multipart parser takes a backslash for a Windows path separator and "X:" for a
    drive, so kamado sends EPGStation's own replacements, and a long name leaves room
    for the "(1)" EPGStation adds."""
    server = station.server
    recorded_id = server.new_recorded("upload names", 8)
    output = tmp_path / name
    shutil.copy(clips.isdb_1080i, output)
    api = EpgstationApi(server.url, timeout=60)
    sub_dir = tmp_path.name  # a directory of this test's own under "recorded"
    upload = Upload(recorded_id, output, "recorded", "kamado", sub_dir=sub_dir)
    first, second = api.upload(upload), api.upload(upload)
    files = {f["id"]: f for f in server.video_files(recorded_id)}
    stem, extension = stored.rsplit(".", 1)
    assert files[first]["filename"] == stored
    assert files[second]["filename"] == f"{stem}(1).{extension}"
    for video_id in (first, second):
        assert files[video_id]["name"] == "kamado"
        path = server.recorded_dir / sub_dir / str(files[video_id]["filename"])
        assert path.stat().st_size == output.stat().st_size
