"""The encode pipeline with real ffmpeg and ffprobe: verified output or a clear failure."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.support.media import Clips, leftovers, sha256
from worker.encode.ffprobe import read_media
from worker.encode.pipeline import Attempt, encode_job
from worker.errors import (
    BackendUnavailable,
    JobCancelled,
    OutputError,
    OutputRefused,
    SourceError,
)
from worker.jobs import Job, JobState
from worker.process import group_alive
from worker.profiles import Backend
from worker.progress import Progress
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


def copy(src: Path, directory: Path, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(src, directory / (name or src.name)))


def test_1080i_recording_becomes_a_verified_720p_h264_mp4(clips: Clips, tmp_path: Path) -> None:
    source = copy(clips.isdb_1080i, tmp_path / "rec", "ニュース 7時 'special' $(x).ts")
    before = sha256(source)
    reports: list[Progress] = []
    job = Job.create(str(source), "h264-x264")
    result = encode_job(
        job,
        Attempt(settings=settings(tmp_path), backends=[Backend.X264], on_progress=reports.append),
    )
    output = Path(result.output)
    assert output == source.with_suffix(".mp4")
    assert result.video_codec == "h264" and (result.width, result.height) == (1280, 720)
    assert result.audio_streams == 1
    assert abs(result.duration_s - 2.0) < 0.5
    assert sha256(source) == before
    assert leftovers(source.parent) == []
    states = [r.state for r in reports]
    assert states[0] is JobState.STAGING and JobState.ENCODING in states
    assert states[-1] is JobState.VERIFYING
    assert any(r.done and r.percent == 100.0 for r in reports)


def test_only_the_main_programme_is_kept_from_a_two_service_ts(
    clips: Clips, tmp_path: Path
) -> None:
    source = copy(clips.two_services, tmp_path)
    info = read_media("ffprobe", source)
    assert info.program_id == 1024 and len(info.audio_codecs) == 1
    result = encode_job(
        Job.create(str(source), "h264-x264"),
        Attempt(settings=settings(tmp_path), backends=[Backend.X264]),
    )
    assert result.audio_streams == 1


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ("zero_ts", "empty file (0 bytes)"),
        ("text_ts", "not a recording ffprobe can read (Invalid data found when processing input)"),
        ("truncated", "truncated MPEG-TS: the file ends inside a packet"),
    ],
)
def test_bad_sources_fail_clearly_and_stay_untouched(
    clips: Clips, tmp_path: Path, clip: str, message: str
) -> None:
    source = copy(getattr(clips, clip), tmp_path / "rec")
    before = sha256(source)
    with pytest.raises(SourceError) as info:
        encode_job(
            Job.create(str(source), "h264-x264"),
            Attempt(settings=settings(tmp_path), backends=[Backend.X264]),
        )
    assert message in str(info.value)
    assert str(source) in str(info.value)
    assert sha256(source) == before
    assert sorted(p.name for p in source.parent.iterdir()) == [source.name]


def test_a_missing_source_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"gone\.ts: no such file"):
        encode_job(
            Job.create(str(tmp_path / "gone.ts"), "h264-x264"),
            Attempt(settings=settings(tmp_path), backends=[Backend.X264]),
        )


def test_a_missing_output_directory_fails_before_encoding(clips: Clips, tmp_path: Path) -> None:
    job = Job.create(str(clips.isdb_1080i), "h264-x264", output_dir=tmp_path / "nowhere")
    with pytest.raises(OutputError, match="does not exist"):
        encode_job(job, Attempt(settings=settings(tmp_path), backends=[Backend.X264]))


def test_an_output_that_would_overwrite_the_source_is_refused(clips: Clips, tmp_path: Path) -> None:
    source = copy(clips.isdb_1080i, tmp_path, "already.mp4")
    job = Job.create(str(source), "h264-x264", output=str(source))
    with pytest.raises(OutputRefused, match="would overwrite the source"):
        encode_job(job, Attempt(settings=settings(tmp_path), backends=[Backend.X264]))


def test_hardware_only_job_on_a_software_worker_fails_without_encoding(
    clips: Clips, tmp_path: Path
) -> None:
    source = copy(clips.isdb_1080i, tmp_path)
    with pytest.raises(BackendUnavailable, match="profile accepts qsv, vaapi"):
        encode_job(
            Job.create(str(source), "h264-intel"),
            Attempt(settings=settings(tmp_path), backends=[Backend.X264]),
        )
    assert not source.with_suffix(".mp4").exists()


def test_cancel_kills_ffmpeg_and_leaves_no_output(clips: Clips, tmp_path: Path) -> None:
    source = copy(clips.long_1080i, tmp_path)
    cancel = threading.Event()
    pgids: list[int] = []

    def on_progress(p: Progress) -> None:
        if p.state is JobState.ENCODING and p.frame > 0:
            cancel.set()

    def check_cancel() -> None:
        import os

        # The ffmpeg child is the only process in its own group; find it for the assertion.
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if str(source).encode() in cmdline and cmdline.startswith(b"ffmpeg"):
                    pgids.append(os.getpgid(int(pid)))
        if cancel.is_set():
            raise JobCancelled("test-job")

    job = Job.create(str(source), "h264-x264")
    attempt = Attempt(
        settings=Settings(state_dir=tmp_path / "s", encode={"progress_interval": 0.2}),
        backends=[Backend.X264],
        on_progress=on_progress,
        check_cancel=check_cancel,
    )
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        encode_job(job, attempt)
    assert time.monotonic() - started < 8
    assert pgids, "ffmpeg was never seen running"
    deadline = time.monotonic() + 5
    while any(group_alive(g) for g in set(pgids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(group_alive(g) for g in set(pgids))
    assert not source.with_suffix(".mp4").exists()
    assert leftovers(tmp_path) == []


def test_a_stalled_ffmpeg_is_killed_and_the_attempt_fails(tmp_path: Path) -> None:
    import os

    from worker.encode.argv import Command
    from worker.encode.run import run_encode
    from worker.errors import EncodeError

    fifo = tmp_path / "never-written.ts"
    os.mkfifo(fifo)
    # Real ffmpeg blocks opening a FIFO nobody writes: a true stall, no progress ever.
    command = Command(
        argv=["ffmpeg", "-nostdin", "-progress", "pipe:1", "-i", str(fifo), "-f", "null", "-"],
        env={},
        backend=Backend.X264,
    )
    started = time.monotonic()
    with pytest.raises(EncodeError, match="stalled: no progress for 1 s") as info:
        run_encode(
            command,
            source=fifo,
            duration_s=10.0,
            on_progress=lambda _p: None,
            check_cancel=lambda: None,
            progress_interval=0.2,
            stall_timeout=1.0,
        )
    assert info.value.kind == "stalled"
    assert time.monotonic() - started < 6
