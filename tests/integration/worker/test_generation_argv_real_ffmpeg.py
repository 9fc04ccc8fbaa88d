"""Every generation x backend x broadcast shape's argv, checked by this machine's ffmpeg.

The argv a GPU of each generation gets (its VA driver, low power where it needs it, each
rate-control mode a profile may ask) is built from real probes of the three probe samples,
then read by ffmpeg's own option tables and run: with no GPU here it must fail at device
initialisation, never at option parsing.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.integration.worker.test_hardware_argv_real_ffmpeg import (
    CLI_OPTION,
    ENCODER,
    PARSE_ERRORS,
    all_option_names,
    encoder_options,
    ffmpeg_help,
    options_of,
)
from worker.backends.generations import GENERATIONS, Generation, LowPower
from worker.backends.proof import SHAPES, make_samples
from worker.encode.argv import build_command
from worker.encode.ffprobe import MediaInfo, read_media
from worker.encode.stderr import classify
from worker.profiles import Backend, Profile
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

RATE = {
    "CQP": Profile(backends=list(Backend)),
    "VBR": Profile(backends=list(Backend), vaapi_rc="VBR"),
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, MediaInfo]]:
    workdir = tmp_path_factory.mktemp("shapes")
    settings = Settings(state_dir=workdir, guest={"probe_seconds": 0.3})
    return {
        name: (path, read_media("ffprobe", path))
        for name, path in make_samples(settings, workdir).items()
    }


@cache
def cli_options() -> set[str]:
    """ffmpeg's own options (-q:v is -qscale, not an AVOption of the encoder)."""
    return {
        m.group(1) for line in ffmpeg_help("full").splitlines() if (m := CLI_OPTION.match(line))
    }


def cases() -> list[tuple[Generation, Backend, bool, str]]:
    out = []
    for generation in GENERATIONS:
        powers = {
            LowPower.NONE: [False],
            LowPower.OPTIONAL: [False, True],  # the probe's retry builds the second
            LowPower.REQUIRED: [True],
        }[generation.low_power]
        for name in generation.backends:
            for low_power in powers:
                for rate in RATE:
                    out.append((generation, Backend(name), low_power, rate))
    return out


CASES = cases()
IDS = [f"{g.key}-{b.value}-{'lp' if lp else 'vme'}-{r}" for g, b, lp, r in CASES]


def generation_argv(
    generation: Generation, backend: Backend, low_power: bool, rate: str, source: Path,
    info: MediaInfo, output: Path,
) -> list[str]:  # fmt: skip
    return build_command(
        backend, RATE[rate], info, source, output,
        vaapi_driver=generation.va_driver, low_power=low_power,
    ).argv  # fmt: skip


def test_every_generation_and_shape_is_covered() -> None:
    assert {g.key for g in GENERATIONS} >= {"haswell", "meteor_lake", "arc", "alder_lake"}
    assert [s.name for s in SHAPES] == ["1440x1080i", "720x480i", "1920x1080i"]
    assert len(CASES) > 40


@pytest.mark.parametrize(("generation", "backend", "low_power", "rate"), CASES, ids=IDS)
def test_each_generations_argv_has_only_options_and_values_this_ffmpeg_knows(
    generation: Generation, backend: Backend, low_power: bool, rate: str,
    shapes: dict[str, tuple[Path, MediaInfo]], tmp_path: Path,
) -> None:  # fmt: skip
    known = all_option_names()
    private = options_of(f"encoder={ENCODER[backend]}")
    generic = options_of("full")
    cli = cli_options()
    for source, info in shapes.values():
        argv = generation_argv(
            generation, backend, low_power, rate, source, info, tmp_path / "o.mp4"
        )
        for item in argv[1:]:
            if item.startswith("-") and item != "-" and not re.match(r"^-\d", item):
                name = item[1:].split(":")[0]
                negated = name.startswith("no") and name[2:] in known
                assert name in known or negated, f"{item} is not an ffmpeg option"
        for name, value in encoder_options(argv):
            base = name.split(":")[0]
            if name in {"c:a", "b:a", "ac", "max_muxing_queue_size", "movflags", "f"}:
                continue
            assert base in private or base in generic or base in cli, f"-{name}: unknown"
            constants = private.get(base, set())
            if constants and not re.fullmatch(r"-?\d+[kM]?", value):
                assert value in constants, f"-{name} {value}: not one of {sorted(constants)}"
        for element in argv[argv.index("-vf") + 1].split(","):
            filter_name, _, args = element.partition("=")
            options = options_of(f"filter={filter_name}")
            assert options, f"no filter {filter_name} in this ffmpeg"
            for pair in filter(None, args.split(":")):
                key = pair.partition("=")[0]
                assert key in options, f"{filter_name}: no option {key}"


def test_every_distinct_argv_fails_only_at_device_initialisation(
    shapes: dict[str, tuple[Path, MediaInfo]], tmp_path: Path
) -> None:
    if Path("/dev/dri").exists():
        pytest.skip("this machine has a render node; the dry run is for GPU-less machines")
    output = tmp_path / "o.mp4"
    distinct: dict[tuple[str, ...], str] = {}
    for (generation, backend, low_power, rate), case_id in zip(CASES, IDS, strict=True):
        for shape, (source, info) in shapes.items():
            argv = generation_argv(generation, backend, low_power, rate, source, info, output)
            distinct.setdefault(tuple(argv), f"{case_id}-{shape}")
    assert len(distinct) >= 18, "drivers, low power, rate modes and shapes give distinct argv"
    env = {"LIBVA_DRIVER_NAME": "i965", "PATH": "/usr/bin:/bin"}
    for argv, case_id in distinct.items():
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode != 0, case_id
        assert not PARSE_ERRORS.search(done.stderr), (case_id, done.stderr)
        assert classify(done.stderr, done.returncode) == "hardware", (case_id, done.stderr)
        assert not output.exists(), case_id
