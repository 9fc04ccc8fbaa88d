"""Output verification with the real ffprobe: one process reads the streams and decodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from worker.errors import VerifyError
from worker.probe import MediaInfo, probe_source
from worker.sample import make_sample
from worker.settings import VerifySettings
from worker.verify import verify_output

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
    return probe_source("ffprobe", source), output


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
