"""The qsv and vaapi argv checked against this machine's real ffmpeg (no Intel GPU here).

Every option must exist for the encoder, filter or demuxer it is meant for, every named
value must be one the option lists, and a real run must fail only where the missing GPU
makes it fail: at device initialisation, never at option parsing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.support.media import Clips
from worker.encode.argv import build_command
from worker.encode.ffprobe import read_media
from worker.encode.stderr import classify
from worker.profiles import BUILTIN_PROFILES, Backend, Profile

pytestmark = pytest.mark.integration

OPTION = re.compile(r"^\s+-?([\w:-]+)\s+<([\w ]+)>\s+[.A-Z]{11}")
CONSTANT = re.compile(r"^\s+([\w-]+)\s+(?:-?\d+\s+)?[.A-Z]{11}")
CLI_OPTION = re.compile(r"^-([\w:]+)")
PARSE_ERRORS = re.compile(
    r"Unrecognized option|Option not found|Unable to parse option value|Error setting option|"
    r"No such filter|Unknown encoder"
)


def ffmpeg_help(topic: str) -> str:
    return subprocess.run(
        ["ffmpeg", "-hide_banner", "-h", topic], capture_output=True, text=True, check=True
    ).stdout


@cache
def options_of(topic: str) -> dict[str, set[str]]:
    """Option names of one help page, each with its named constants."""
    options: dict[str, set[str]] = {}
    current: str | None = None
    for line in ffmpeg_help(topic).splitlines():
        if m := OPTION.match(line):
            current = m.group(1)
            options.setdefault(current, set())
        elif (m := CONSTANT.match(line)) and current is not None:
            options[current].add(m.group(1))
    return options


@cache
def all_option_names() -> set[str]:
    """Every option ffmpeg knows: its own CLI options and every AVOptions table."""
    names = set(options_of("full"))
    for line in ffmpeg_help("full").splitlines():
        if m := CLI_OPTION.match(line):
            names.add(m.group(1))
    return names


def hw_argv(
    backend: Backend, source: Path, output: Path, profile: Profile | None = None
) -> list[str]:
    profile = profile or BUILTIN_PROFILES["h264-intel"]
    info = read_media("ffprobe", source)
    return build_command(backend, profile, info, source, output, vaapi_driver="i965").argv


def encoder_options(argv: list[str]) -> list[tuple[str, str]]:
    """(option, value) pairs after the video encoder is chosen, up to the output."""
    start = len(argv) - 1 - argv[::-1].index("-c:v")
    pairs = []
    i = start + 2
    while i < len(argv) - 1:
        if argv[i].startswith("-") and not argv[i + 1].startswith("-"):
            pairs.append((argv[i][1:], argv[i + 1]))
            i += 2
        else:
            i += 1
    return pairs


PROFILES = {
    "qsv": (Backend.QSV, BUILTIN_PROFILES["h264-intel"]),
    "vaapi-cqp": (Backend.VAAPI, BUILTIN_PROFILES["h264-intel"]),
    "vaapi-vbr": (Backend.VAAPI, Profile(backends=[Backend.VAAPI], vaapi_rc="VBR")),
}
ENCODER = {Backend.QSV: "h264_qsv", Backend.VAAPI: "h264_vaapi"}


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_every_option_in_the_hardware_argv_exists_in_this_ffmpeg(
    case: str, clips: Clips, tmp_path: Path
) -> None:
    backend, profile = PROFILES[case]
    argv = hw_argv(backend, clips.isdb_1080i, tmp_path / "o.mp4", profile)
    known = all_option_names()
    for item in argv[1:]:
        if item.startswith("-") and item != "-" and not re.match(r"^-\d", item):
            name = item[1:].split(":")[0]
            # Boolean options also take a "no" prefix: -nostdin is -stdin off.
            negated = name.startswith("no") and name[2:] in known
            assert name in known or negated, f"{item} is not an ffmpeg option"


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_encoder_options_and_their_named_values_belong_to_the_encoder(
    case: str, clips: Clips, tmp_path: Path
) -> None:
    backend, profile = PROFILES[case]
    argv = hw_argv(backend, clips.isdb_1080i, tmp_path / "o.mp4", profile)
    private = options_of(f"encoder={ENCODER[backend]}")
    generic = options_of("full")  # includes AVCodecContext options such as -b and -maxrate
    audio_and_muxer = {"c:a", "b:a", "ac", "max_muxing_queue_size", "movflags", "f"}
    for name, value in encoder_options(argv):
        base = name.split(":")[0]
        if name in audio_and_muxer:
            continue
        assert base in private or base in generic, f"-{name} is not an option of {ENCODER[backend]}"
        constants = private.get(base, set())
        if constants and not re.fullmatch(r"-?\d+[kM]?", value):
            assert value in constants, f"-{name} {value}: not one of {sorted(constants)}"


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_filter_options_belong_to_their_filters(case: str, clips: Clips, tmp_path: Path) -> None:
    backend, profile = PROFILES[case]
    argv = hw_argv(backend, clips.isdb_1080i, tmp_path / "o.mp4", profile)
    chain = argv[argv.index("-vf") + 1]
    for element in chain.split(","):
        name, _, args = element.partition("=")
        options = options_of(f"filter={name}")
        assert options, f"no filter {name} in this ffmpeg"
        for pair in filter(None, args.split(":")):
            key, _, value = pair.partition("=")
            assert key in options, f"{name}: no option {key}"
            if options[key] and not value.lstrip("-").isdigit():
                assert value in options[key], f"{name}:{key}={value} not in {sorted(options[key])}"


def test_vpp_qsv_uses_the_advanced_deinterlacer_by_name() -> None:
    assert "advanced" in options_of("filter=vpp_qsv")["deinterlace"]


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_a_real_run_fails_only_at_device_initialisation(
    case: str, clips: Clips, tmp_path: Path
) -> None:
    backend, profile = PROFILES[case]
    output = tmp_path / "o.mp4"
    argv = hw_argv(backend, clips.isdb_1080i, output, profile)
    if Path("/dev/dri").exists():
        pytest.skip("this machine has a render node; the dry run is for GPU-less machines")
    env = {"LIBVA_DRIVER_NAME": "i965", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert not PARSE_ERRORS.search(result.stderr), result.stderr
    assert classify(result.stderr, result.returncode) == "hardware", result.stderr
    assert not output.exists()


def test_a_misspelt_option_would_be_caught_by_the_dry_run(clips: Clips, tmp_path: Path) -> None:
    argv = hw_argv(Backend.VAAPI, clips.isdb_1080i, tmp_path / "o.mp4")
    argv.insert(argv.index("-c:v"), "-rc_mod")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert PARSE_ERRORS.search(result.stderr)
    assert classify(result.stderr, result.returncode) == "option"


def test_ffmpeg_is_the_debian_build_with_qsv_and_vaapi() -> None:
    assert shutil.which("ffmpeg")
    encoders = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("h264_qsv", "h264_vaapi", "libx264"):
        assert f" {name} " in encoders
