"""Each fix of issue #20 in the qsv/vaapi argv, pinned for every source shape and profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.guest_agent import intel_gpu
from worker.backends.capabilities import needs_low_power
from worker.encode.argv import SQUARE_PIXELS, VAAPI_EXTRA_FRAMES, build_command, output_size
from worker.encode.ffprobe import MediaInfo, VideoInfo, parse_media
from worker.profiles import Backend, Profile

FIXTURE = Path(__file__).parents[2] / "fixtures" / "ffprobe_synth_isdb_1080i.json"
HARDWARE = [Backend.QSV, Backend.VAAPI]


def isdb() -> MediaInfo:
    return parse_media(Path("/rec/a.ts"), json.loads(FIXTURE.read_text()))


def shaped(width: int, height: int, sar: tuple[int, int], codec: str = "mpeg2video") -> MediaInfo:
    base = isdb()
    assert base.video is not None
    video = base.video.model_copy(
        update={"width": width, "height": height, "sar": sar, "codec": codec}
    )
    return base.model_copy(update={"video": video})


def argv(backend: Backend, info: MediaInfo, profile: Profile, **kw: object) -> list[str]:
    command = build_command(backend, profile, info, Path("/rec/a.ts"), Path("/o.mp4"), **kw)  # type: ignore[arg-type]
    return command.argv


def chain(args: list[str]) -> list[str]:
    return args[args.index("-vf") + 1].split(",")


sources = st.builds(
    shaped,
    width=st.sampled_from([720, 1280, 1440, 1920]),
    height=st.sampled_from([480, 720, 1080]),
    sar=st.sampled_from([(1, 1), (4, 3), (8, 9), (32, 27), (10, 11)]),
    codec=st.sampled_from(["mpeg2video", "h264", "vc1"]),
)
profiles = st.builds(
    Profile,
    backends=st.just(list(Backend)),
    height=st.sampled_from([480, 720, 1080, "source"]),
    deinterlace=st.sampled_from(["auto", "on", "off", "ivtc"]),
    vaapi_rc=st.sampled_from(["CQP", "VBR"]),
)


@settings(max_examples=200, deadline=None)
@given(info=sources, profile=profiles, low_power=st.booleans())
def test_a_scaling_vpp_qsv_is_always_followed_by_square_pixels(
    info: MediaInfo, profile: Profile, low_power: bool
) -> None:
    # §1: vpp_qsv keeps the input's SAR; 5.1 takes the encoder's from the end of the graph.
    elements = chain(argv(Backend.QSV, info, profile, low_power=low_power))
    vpp = next(i for i, e in enumerate(elements) if e.startswith("vpp_qsv"))
    assert elements[vpp + 1 :] == [SQUARE_PIXELS]
    size = output_size(profile, info)
    if size is not None:
        assert f"w={size[0]}:h={size[1]}" in elements[vpp]


def test_the_1440x1080_broadcast_scaled_by_vpp_qsv_gets_setsar_1_not_4_3() -> None:
    elements = chain(argv(Backend.QSV, isdb(), Profile(backends=[Backend.QSV])))
    assert elements == ["vpp_qsv=deinterlace=advanced:w=1280:h=720", "setsar=sar=1"]


@settings(max_examples=100, deadline=None)
@given(
    info=sources,
    profile=profiles,
    node=st.sampled_from(["/dev/dri/renderD128", "/dev/dri/renderD129"]),
    inherited=st.sampled_from(["", "i965", "iHD"]),
)
def test_qsv_pins_ihd_on_its_va_device_whatever_driver_is_configured(
    info: MediaInfo, profile: Profile, node: str, inherited: str
) -> None:
    # §4: an inherited LIBVA_DRIVER_NAME=i965 must not reach the device QSV derives from.
    command = build_command(
        Backend.QSV, profile, info, Path("/a.ts"), Path("/o.mp4"),
        render_node=Path(node), vaapi_driver=inherited,
    )  # fmt: skip
    devices = [command.argv[i + 1] for i, a in enumerate(command.argv) if a == "-init_hw_device"]
    assert devices == [f"vaapi=va:{node},driver=iHD", "qsv=qs@va"]
    assert "LIBVA_DRIVER_NAME" not in command.env


@settings(max_examples=100, deadline=None)
@given(info=sources, profile=profiles)
def test_low_power_swaps_icq_for_cqp_on_qsv_and_asks_vaapi_for_the_lp_entrypoint(
    info: MediaInfo, profile: Profile
) -> None:
    # §2: VDEnc has no ICQ; h264_vaapi in 5.1 looks only at EncSlice unless asked.
    normal = argv(Backend.QSV, info, profile)
    assert "-low_power" not in normal
    assert normal[normal.index("-global_quality") + 1] == str(profile.quality)
    lp = argv(Backend.QSV, info, profile, low_power=True)
    assert lp[lp.index("-low_power") + 1] == "1"
    assert "-global_quality" not in lp and lp[lp.index("-q:v") + 1] == str(profile.quality)
    assert "-low_power" not in argv(Backend.VAAPI, info, profile)
    vaapi = argv(Backend.VAAPI, info, profile, low_power=True)
    assert vaapi[vaapi.index("-low_power") + 1] == "1"
    assert vaapi.index("-low_power") > vaapi.index("-i"), "an encoder option, after the input"


@settings(max_examples=100, deadline=None)
@given(info=sources, profile=profiles)
def test_vaapi_decode_on_the_gpu_always_asks_for_extra_surfaces(
    info: MediaInfo, profile: Profile
) -> None:
    # §5: 5.1's MPEG-2 pool is 6 surfaces; deinterlace_vaapi holds references of its own.
    args = argv(Backend.VAAPI, info, profile)
    before_input = args[: args.index("-i")]
    if "-hwaccel" in before_input:
        assert before_input[before_input.index("-extra_hw_frames") + 1] == str(VAAPI_EXTRA_FRAMES)
        assert VAAPI_EXTRA_FRAMES >= 8
    else:  # software decode (IVTC, or a codec VAAPI cannot decode) uploads instead
        assert "-extra_hw_frames" not in before_input
        assert any(e.startswith("hwupload") for e in chain(args))


@pytest.mark.parametrize(
    ("driver", "mode", "maxrate"), [("i965", "CBR", "6M"), ("iHD", "VBR", "9M"), ("", "VBR", "9M")]
)
def test_a_bitrate_profile_is_cbr_on_i965_and_vbr_elsewhere(
    driver: str, mode: str, maxrate: str
) -> None:
    # §6: Jellyfin: "VBR in i965 driver may result in pixelated output".
    profile = Profile(backends=[Backend.VAAPI], vaapi_rc="VBR", vaapi_bitrate="6M")
    command = build_command(
        Backend.VAAPI, profile, isdb(), Path("/a.ts"), Path("/o.mp4"), vaapi_driver=driver
    )
    args = command.argv
    assert args[args.index("-rc_mode") + 1] == mode
    assert args[args.index("-b:v") + 1] == "6M"
    assert args[args.index("-maxrate") + 1] == maxrate


def test_a_cqp_profile_stays_cqp_on_i965() -> None:
    profile = Profile(backends=[Backend.VAAPI], vaapi_rc="CQP", quality=24)
    args = argv(Backend.VAAPI, isdb(), profile, vaapi_driver="i965")
    assert args[args.index("-rc_mode") + 1 : args.index("-rc_mode") + 4] == ["CQP", "-qp", "24"]


@pytest.mark.parametrize("name", sorted(intel_gpu.LOW_POWER_CAUSES))
def test_the_low_power_only_failures_ffmpeg_prints_are_recognised(name: str) -> None:
    assert needs_low_power(intel_gpu.LOW_POWER_CAUSES[name].stderr)


@pytest.mark.parametrize("name", sorted(intel_gpu.ALL))
def test_no_other_recorded_failure_triggers_a_low_power_retry(name: str) -> None:
    failure = intel_gpu.ALL[name]
    if name in intel_gpu.LOW_POWER_CAUSES:
        pytest.skip("a low-power cause")
    assert not needs_low_power(failure.stderr), name


def test_a_source_of_every_shape_keeps_its_display_aspect_through_vpp_qsv() -> None:
    for width, height, sar in ((1440, 1080, (4, 3)), (720, 480, (8, 9)), (1920, 1080, (1, 1))):
        info = shaped(width, height, sar)
        video = info.video
        assert isinstance(video, VideoInfo)
        size = output_size(Profile(backends=[Backend.QSV]), info)
        assert size is not None
        assert abs(size[0] / size[1] - video.display_aspect) < 0.01
