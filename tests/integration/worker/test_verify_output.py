"""Output verification with the real ffprobe: one process reads the streams and decodes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.media import leftovers, sha256
from worker.encode.ffprobe import MediaInfo, StreamTime, read_media
from worker.encode.pipeline import Attempt, encode_job
from worker.encode.sample import make_sample
from worker.encode.verify import check_streams, verify_output
from worker.errors import VerifyError
from worker.jobs import Job
from worker.profiles import Backend
from worker.settings.model import Settings, VerifySettings

pytestmark = pytest.mark.integration
MODES = ["full", "keyframes", "off"]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[MediaInfo, Path]:
    """A short broadcast-like TS and its H.264 + AAC faststart MP4, made by real ffmpeg."""
    base = tmp_path_factory.mktemp("verify")
    source = make_sample(base / "source.ts", seconds=3)
    output = base / "good.mp4"
    argv = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-map", "0:v:0",
            "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            "-movflags", "+faststart", str(output)]  # fmt: skip
    subprocess.run(argv, check=True, timeout=120)
    return read_media("ffprobe", source), output


def damaged(good: Path, target: Path, offset: int) -> Path:
    """A copy of ``good`` with 40 kB of its media data scrambled from ``offset`` on."""
    data = bytearray(good.read_bytes())
    for k in range(offset, min(offset + 40_000, len(data))):
        data[k] = (data[k] * 7 + 13) & 0xFF
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("mode", MODES)
def test_a_good_output_verifies_in_every_decode_mode(
    encoded: tuple[MediaInfo, Path], mode: str
) -> None:
    source, output = encoded
    info = verify_output(output, source, VerifySettings(decode=mode))  # type: ignore[arg-type]
    assert info.video is not None and info.video.codec == "h264"
    assert info.audio_codecs == ["aac"] * len(source.audio_codecs)


@pytest.mark.parametrize("where", ["first keyframe", "middle"])
@pytest.mark.parametrize("mode", ["full", "keyframes"])
def test_damaged_video_fails_the_decode_check_with_ffmpegs_reason(
    encoded: tuple[MediaInfo, Path], tmp_path: Path, mode: str, where: str
) -> None:
    source, good = encoded
    data = good.read_bytes()
    offset = data.index(b"mdat") + 8 if where == "first keyframe" else len(data) // 2
    bad = damaged(good, tmp_path / "bad.mp4", offset)
    with pytest.raises(VerifyError, match=r"decode check failed: .*NAL"):
        verify_output(bad, source, VerifySettings(decode=mode))  # type: ignore[arg-type]


def test_with_the_decode_check_off_only_the_container_is_trusted(
    encoded: tuple[MediaInfo, Path], tmp_path: Path
) -> None:
    source, good = encoded
    bad = damaged(good, tmp_path / "bad.mp4", len(good.read_bytes()) // 2)
    assert verify_output(bad, source, VerifySettings(decode="off")).video is not None


@pytest.mark.parametrize(
    ("keep", "reason"),
    [(2000, "output is unreadable: .*Invalid data"), (0.6, "decode check failed|too short")],
)
def test_an_output_cut_short_fails_with_the_reason(
    encoded: tuple[MediaInfo, Path], tmp_path: Path, keep: float, reason: str
) -> None:
    source, good = encoded
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(keep if keep > 1 else len(data) * keep)])
    with pytest.raises(VerifyError, match=reason):
        verify_output(cut, source, VerifySettings())


@pytest.fixture(scope="module")
def early_silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s SD recording whose audio stops after 1.5 s, made by real ffmpeg."""
    base = tmp_path_factory.mktemp("early")
    return make_sample(
        base / "early.ts", seconds=6, width=720, height=480, aspect="4:3", audio_seconds=1.5
    )


def test_audio_that_ends_early_fails_the_encode_once_naming_the_stream(
    early_silence: Path, tmp_path: Path
) -> None:
    source = Path(shutil.copy2(early_silence, tmp_path / "early.ts"))
    before = sha256(source)
    settings = Settings(state_dir=tmp_path / "state")
    with pytest.raises(VerifyError) as failure:
        encode_job(
            Job.create(str(source), "h264-x264"),
            Attempt(settings=settings, backends=[Backend.X264]),
        )
    message = str(failure.value)
    # The file's duration (the video's) matches: only the per-stream check sees it.
    assert "verification failed: audio stream #1 (aac) lasts 1." in message
    assert "the source programme 6.0" in message
    assert message.count(";") == 0, message
    assert sha256(source) == before
    assert leftovers(source.parent) == []
    assert not source.with_suffix(".mp4").exists()


@pytest.mark.parametrize("delta", [-4.0, -2.5, 2.5, 4.0])
def test_each_stream_is_checked_against_the_programme_and_each_other(delta: float) -> None:
    video = StreamTime(index=0, kind="video", codec="h264", duration_s=10.0)
    audio = StreamTime(index=1, kind="audio", codec="aac", duration_s=10.0 + delta)
    source = MediaInfo(
        path="s.ts", format_name="mpegts", duration_s=10.0, size_bytes=1, video=None,
        audio_codecs=["aac"], streams=[video.model_copy(update={"codec": "mpeg2video"})],
    )  # fmt: skip
    output = source.model_copy(update={"streams": [video, audio]})
    problems = check_streams(output, source, VerifySettings(duration_tolerance_s=2.0))
    assert problems == [
        f"audio stream #1 (aac) lasts {10 + delta:.2f} s, the source programme 10.00 s "
        "(more than 2.00 s apart)"
    ]


def test_streams_each_close_to_the_programme_but_far_apart_fail_naming_both() -> None:
    video = StreamTime(index=0, kind="video", codec="h264", duration_s=11.5)
    audio = StreamTime(index=1, kind="audio", codec="aac", duration_s=8.5)
    source = MediaInfo(
        path="s.ts", format_name="mpegts", duration_s=10.0, size_bytes=1, video=None,
        audio_codecs=["aac"],
    )  # fmt: skip
    output = source.model_copy(update={"streams": [video, audio]})
    assert check_streams(output, source, VerifySettings(duration_tolerance_s=2.0)) == [
        "audio stream #1 (aac) ends 3.00 s before video stream #0 (h264) (more than 2.00 s)"
    ]
    close = output.model_copy(
        update={"streams": [video, audio.model_copy(update={"duration_s": 10.0})]}
    )
    assert check_streams(close, source, VerifySettings(duration_tolerance_s=2.0)) == []
