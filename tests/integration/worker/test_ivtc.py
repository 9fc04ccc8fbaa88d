"""deinterlace = "ivtc": telecined 29.97i film or anime comes out 23.976p progressive."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.worker.test_hardware_argv_real_ffmpeg import PARSE_ERRORS, options_of
from tests.support.media import sha256, telecined_ts
from worker import process
from worker.encode.argv import IVTC, build_command
from worker.encode.ffprobe import read_media, run_ffprobe
from worker.encode.pipeline import Attempt, encode_job
from worker.encode.stderr import classify
from worker.jobs import Job
from worker.profiles import Backend, Profile
from worker.settings.model import Settings

pytestmark = pytest.mark.integration
SECONDS = 3.0
FILM = "testsrc2=size=720x480:rate=24000/1001"  # what telecined_ts puts through pulldown


@pytest.fixture(scope="module")
def telecined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return telecined_ts(tmp_path_factory.mktemp("ivtc") / "anime.ts", SECONDS)


def ivtc(backend: Backend) -> Profile:
    return Profile(backends=[backend], deinterlace="ivtc", height="source", x264_preset="ultrafast")


def psnr_against_film(path: Path, tmp_path: Path, skip: int, shift: int = 0) -> list[float]:
    """Per-frame PSNR (dB) of a file's video, from its frame ``skip`` on, against the
    original 23.976p film frames from frame ``shift`` on, scaled to the file's size."""
    stats = tmp_path / f"psnr-{skip}-{shift}.log"
    graph = (
        # Frame n + skip against film frame n + shift, whatever the timestamps say.
        f"[0:v]trim=start_frame={skip},setpts=N*1001/24000/TB[a];"
        f"[1:v]scale=640:480,setsar=1,trim=start_frame={shift},setpts=N*1001/24000/TB[b];"
        f"[a][b]psnr=shortest=1:stats_file={stats}"
    )
    process.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
         "-f", "lavfi", "-i", f"{FILM}:duration={SECONDS + 1:g}",
         "-lavfi", graph, "-f", "null", "-"], timeout=120, check=True,
    )  # fmt: skip
    return [float(m) for m in re.findall(r"psnr_avg:([0-9.]+)", stats.read_text())]


def avfilter_options() -> dict[str, set[str]]:
    """The options ffmpeg's help lists under "AVFilter AVOptions" (common to all filters)."""
    text = subprocess.run(
        ["ffmpeg", "-hide_banner", "-h", "full"], capture_output=True, text=True, check=True
    ).stdout
    section = text.split("\nAVFilter AVOptions:\n", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"^\s+([\w]+)\s+<", section, re.MULTILINE)
    assert "extra_hw_frames" in names, section
    return {name: set() for name in names}


def video_stream(path: Path) -> dict[str, object]:
    data = run_ffprobe("ffprobe", path, ["-count_frames"])
    return next(s for s in data["streams"] if s["codec_type"] == "video")


def encode(source: Path, tmp_path: Path, profile: Profile) -> Path:
    settings = Settings(state_dir=tmp_path / "state", profiles={"p": profile})
    result = encode_job(
        Job.create(str(source), "p"), Attempt(settings=settings, backends=[Backend.X264])
    )
    return Path(result.output)


def test_the_source_is_telecined_29_97_interlaced(telecined: Path) -> None:
    stream = video_stream(telecined)
    assert stream["r_frame_rate"] == "30000/1001"
    assert stream["field_order"] == "tt"


def test_ivtc_turns_a_telecined_source_into_23_976_progressive_frames(
    telecined: Path, tmp_path: Path
) -> None:
    source = tmp_path / "anime.ts"
    source.write_bytes(telecined.read_bytes())
    before = sha256(source)
    output = encode(source, tmp_path, ivtc(Backend.X264))
    stream = video_stream(output)
    assert stream["avg_frame_rate"] == "24000/1001"
    frames = int(str(stream["nb_read_frames"]))
    assert abs(frames - SECONDS * 24000 / 1001) <= 3, frames
    assert stream["field_order"] == "progressive"
    # Every output frame is one of the film's frames, rebuilt from its two fields (ffmpeg's
    # idet cannot tell on synthetic pictures; a one-frame slip costs some 20 dB).
    # ffmpeg may repeat the first frame to keep the audio in sync: find where film starts.
    skip = max(range(3), key=lambda k: min(psnr_against_film(output, tmp_path, k)))
    matched = psnr_against_film(output, tmp_path, skip)
    assert len(matched) >= frames - 3 and min(matched) > 35.0, (skip, matched)
    slipped = psnr_against_film(output, tmp_path, skip, shift=1)
    assert max(slipped[1:]) < 30.0, slipped
    assert sha256(source) == before


def test_without_ivtc_the_same_source_stays_at_29_97(telecined: Path, tmp_path: Path) -> None:
    source = tmp_path / "anime.ts"
    source.write_bytes(telecined.read_bytes())
    plain = Profile(backends=[Backend.X264], height="source", x264_preset="ultrafast")
    assert video_stream(encode(source, tmp_path, plain))["avg_frame_rate"] == "30000/1001"


@pytest.mark.parametrize("backend", [Backend.QSV, Backend.VAAPI])
def test_hardware_ivtc_decodes_in_software_and_uploads_the_matched_frames(
    telecined: Path, tmp_path: Path, backend: Backend
) -> None:
    info = read_media("ffprobe", telecined)
    output = tmp_path / "o.mp4"
    argv = build_command(backend, ivtc(backend), info, telecined, output).argv
    assert "-hwaccel" not in argv
    chain = argv[argv.index("-vf") + 1]
    assert chain.startswith(IVTC + ",format=nv12,hwupload"), chain
    assert "deinterlace" not in chain
    # The software half of the chain really runs, on the real telecined source.
    software = chain.split(",hwupload")[0]
    process.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(telecined),
         "-map", "0:v:0", "-vf", software, "-f", "null", "-"], timeout=120, check=True,
    )  # fmt: skip
    generic = avfilter_options()  # every filter takes these (hwupload's extra_hw_frames)
    for element in chain.split(","):
        name, _, args = element.partition("=")
        options = {**generic, **options_of(f"filter={name}")}
        assert options.keys() - generic.keys(), f"no filter {name} in this ffmpeg"
        for pair in filter(lambda p: "=" in p, args.split(":")):  # positional: run above
            key, _, value = pair.partition("=")
            assert key in options, f"{name}: no option {key}"
            if options[key] and not value.lstrip("-").isdigit():
                assert value in options[key], f"{name}:{key}={value} not in {options[key]}"
    if Path("/dev/dri").exists():
        return
    env = {"LIBVA_DRIVER_NAME": "i965", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert not PARSE_ERRORS.search(result.stderr), result.stderr
    assert classify(result.stderr, result.returncode) == "hardware", result.stderr
    assert not output.exists()
