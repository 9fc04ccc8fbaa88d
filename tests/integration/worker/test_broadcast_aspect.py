"""Every Japanese broadcast shape keeps its display aspect, through every backend.

Sources are MPEG-2 TS clips made by real ffmpeg in each shape ISDB carries (SD 4:3 and
16:9 at 720, 544 and 480 pixels wide, anamorphic 1440x1080, 1920x1080); the x264 path
really encodes them, the qsv and vaapi argv are checked against this ffmpeg's parser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.worker.test_hardware_argv_real_ffmpeg import PARSE_ERRORS, options_of
from worker.encode.argv import build_command
from worker.encode.ffprobe import MediaInfo, read_media
from worker.encode.pipeline import Attempt, encode_job
from worker.encode.sample import make_sample
from worker.encode.stderr import classify
from worker.encode.verify import verify_output
from worker.errors import VerifyError
from worker.jobs import Job
from worker.profiles import Backend, Profile
from worker.settings.model import Settings, VerifySettings

pytestmark = pytest.mark.integration

# (width, height, display aspect): what ISDB-T and BS/CS broadcasts carry.
SHAPES = [
    (720, 480, "4:3"),  # SAR 8:9
    (720, 480, "16:9"),  # SAR 32:27
    (544, 480, "4:3"),  # SAR 20:17
    (544, 480, "16:9"),  # SAR 80:51
    (480, 480, "4:3"),  # SAR 4:3
    (480, 480, "16:9"),  # SAR 16:9
    (1440, 1080, "16:9"),  # SAR 4:3
    (1920, 1080, "16:9"),  # SAR 1:1
]
HEIGHTS: list[int | str] = [720, "source", 360]
SIZE = re.compile(r"(?:\bw=(\d+):h=(\d+))")


def shape_id(shape: tuple[int, int, str]) -> str:
    return f"{shape[0]}x{shape[1]}-{shape[2].replace(':', 'x')}"


def ratio(text: str) -> float:
    num, den = text.split(":")
    return int(num) / int(den)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One second of each broadcast shape, interlaced MPEG-2 + AAC in a TS."""
    base = tmp_path_factory.mktemp("shapes")
    return {
        shape_id(s): make_sample(
            base / f"{shape_id(s)}.ts", seconds=1, width=s[0], height=s[1], aspect=s[2]
        )
        for s in SHAPES
    }


def profile(backend: Backend, height: int | str) -> Profile:
    return Profile(backends=[backend], height=height, x264_preset="ultrafast")  # type: ignore[arg-type]


@pytest.mark.parametrize("height", HEIGHTS, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_x264_output_shows_the_sources_display_aspect_in_square_pixels(
    sources: dict[str, Path], tmp_path: Path, shape: tuple[int, int, str], height: int | str
) -> None:
    source = Path(shutil.copy2(sources[shape_id(shape)], tmp_path / "rec.ts"))
    info = read_media("ffprobe", source)
    assert info.video is not None
    assert info.video.display_aspect == pytest.approx(ratio(shape[2]), rel=1e-3)
    settings = Settings(state_dir=tmp_path / "state", profiles={"p": profile(Backend.X264, height)})
    result = encode_job(
        Job.create(str(source), "p"), Attempt(settings=settings, backends=[Backend.X264])
    )
    out = read_media("ffprobe", Path(result.output), reject_cut_ts=False).video
    assert out is not None and out.sar == (1, 1)
    assert out.width % 2 == 0 and out.height % 2 == 0
    assert out.width / out.height == pytest.approx(ratio(shape[2]), abs=2 / out.height)
    lines = shape[1] if height == "source" else min(int(height), shape[1])
    assert out.height == lines


def hardware_argv(backend: Backend, info: MediaInfo, source: Path, height: int | str) -> list[str]:
    return build_command(
        backend, profile(backend, height), info, source, source.with_suffix(".mp4")
    ).argv


@pytest.mark.parametrize("height", HEIGHTS, ids=str)
@pytest.mark.parametrize("backend", [Backend.QSV, Backend.VAAPI])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_hardware_filter_chain_scales_to_the_sources_aspect_and_ends_in_square_pixels(
    sources: dict[str, Path], shape: tuple[int, int, str], backend: Backend, height: int | str
) -> None:
    source = sources[shape_id(shape)]
    info = read_media("ffprobe", source)
    chain = hardware_argv(backend, info, source, height)
    chain_text = chain[chain.index("-vf") + 1]
    elements = chain_text.split(",")
    assert elements[-1] == "setsar=sar=1", chain_text
    scaler = "vpp_qsv" if backend is Backend.QSV else "scale_vaapi"
    sized = [e for e in elements if e.startswith(scaler) and SIZE.search(e)]
    if sized:
        match = SIZE.search(sized[-1])
        assert match is not None
        width, height_px = int(match.group(1)), int(match.group(2))
    else:
        width, height_px = shape[0], shape[1]
    assert width % 2 == 0 and height_px % 2 == 0
    assert width / height_px == pytest.approx(ratio(shape[2]), abs=2 / height_px), chain_text
    # Every filter and option of the chain exists in this ffmpeg.
    for element in elements:
        name, _, args = element.partition("=")
        options = options_of(f"filter={name}")
        assert options, f"no filter {name} in this ffmpeg"
        for pair in filter(None, args.split(":")):
            assert pair.partition("=")[0] in options, f"{name}: no option {pair}"


@pytest.mark.parametrize("backend", [Backend.QSV, Backend.VAAPI])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_hardware_argv_for_every_shape_fails_only_at_device_initialisation(
    sources: dict[str, Path], tmp_path: Path, shape: tuple[int, int, str], backend: Backend
) -> None:
    if Path("/dev/dri").exists():
        pytest.skip("this machine has a render node; the dry run is for GPU-less machines")
    source = sources[shape_id(shape)]
    output = tmp_path / "o.mp4"
    info = read_media("ffprobe", source)
    argv = build_command(backend, profile(backend, 720), info, source, output).argv
    env = {"LIBVA_DRIVER_NAME": "i965", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert not PARSE_ERRORS.search(result.stderr), result.stderr
    assert classify(result.stderr, result.returncode) == "hardware", result.stderr
    assert not output.exists()


def test_an_sd_output_stretched_to_square_pixels_fails_verification_naming_the_aspect(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    source = sources["720x480-4x3"]
    stretched = tmp_path / "stretched.mp4"
    # What kamado used to do: square pixels without a scale, 4:3 shown as 3:2.
    argv = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-map", "0:v:0",
            "-map", "0:a", "-vf", "setsar=1", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", "-movflags", "+faststart", str(stretched)]  # fmt: skip
    subprocess.run(argv, check=True, timeout=120)
    with pytest.raises(VerifyError, match=r"display aspect 1\.5000 \(720x480, SAR 1:1\) is not "):
        verify_output(stretched, read_media("ffprobe", source), VerifySettings())
