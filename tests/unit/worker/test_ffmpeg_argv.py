"""The argv each backend builds, from a probe of a real synthetic ISDB recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from worker.encode.argv import IVTC, build_command, output_size
from worker.encode.ffprobe import MediaInfo, VideoInfo, parse_media
from worker.encode.verify import check_aspect
from worker.profiles import BUILTIN_PROFILES, Audio, Backend, Profile

FIXTURE = Path(__file__).parents[2] / "fixtures" / "ffprobe_synth_isdb_1080i.json"


@pytest.fixture
def isdb() -> MediaInfo:
    """ffprobe's real output for a 1440x1080i MPEG-2 + AAC TS, service 1024."""
    return parse_media(Path("/rec/a.ts"), json.loads(FIXTURE.read_text()))


def argv(backend: Backend, info: MediaInfo, profile: Profile | None = None) -> list[str]:
    profile = profile or BUILTIN_PROFILES["h264-auto"]
    return build_command(backend, profile, info, Path("/rec/a.ts"), Path("/out/a.mp4")).argv


def test_probe_fixture_is_the_broadcast_shape(isdb: MediaInfo) -> None:
    assert isdb.is_mpegts and isdb.program_id == 1024
    assert isdb.video is not None and isdb.video.interlaced
    assert isdb.video.sar == (4, 3)
    assert isdb.audio_codecs == ["aac"]


def test_anamorphic_1440_wide_source_scales_to_square_pixel_720p(isdb: MediaInfo) -> None:
    assert output_size(BUILTIN_PROFILES["h264-auto"], isdb) == (1280, 720)


def test_no_upscaling_when_the_profile_asks_for_more_than_the_source(isdb: MediaInfo) -> None:
    # 1080 lines stay 1080; the 1440 anamorphic pixels widen to 1920 square ones.
    assert output_size(Profile(backends=[Backend.X264], height=2160), isdb) == (1920, 1080)


def test_height_source_keeps_the_sources_lines(isdb: MediaInfo) -> None:
    assert output_size(Profile(backends=[Backend.X264], height="source"), isdb) == (1920, 1080)


def test_a_square_pixel_source_of_the_wanted_height_is_not_scaled(isdb: MediaInfo) -> None:
    assert isdb.video is not None
    full_hd = isdb.model_copy(
        update={"video": isdb.video.model_copy(update={"width": 1920, "sar": (1, 1)})}
    )
    keep = Profile(backends=[Backend.X264], height="source")
    assert output_size(keep, full_hd) is None
    args = argv(Backend.X264, full_hd, keep)
    assert args[args.index("-vf") + 1] == "bwdif=mode=send_frame:parity=auto:deint=all,setsar=sar=1"


@settings(max_examples=400, deadline=None)
@given(
    width=st.integers(16, 4096),
    height=st.integers(16, 2160),
    sar=st.tuples(st.integers(1, 200), st.integers(1, 200)),
    wanted=st.one_of(st.just("source"), st.integers(144, 2160)),
)
@example(width=16, height=16, sar=(3, 16), wanted="source")  # 3 px rounded up to 4
def test_every_output_size_has_the_sources_display_aspect_in_even_square_pixels(
    width: int, height: int, sar: tuple[int, int], wanted: int | str
) -> None:
    video = VideoInfo(index=0, codec="mpeg2video", width=width, height=height, sar=sar)
    assume(1 / 8 <= video.display_aspect <= 8)  # no broadcast is narrower or wider
    info = MediaInfo(
        path="/rec/a.ts", format_name="mpegts", duration_s=1.0, size_bytes=1,
        video=video, audio_codecs=["aac"],
    )  # fmt: skip
    profile = Profile(backends=[Backend.X264], height=wanted)  # type: ignore[arg-type]
    size = output_size(profile, info)
    out_w, out_h = size or (width, height)
    if size is not None:
        assert out_w % 2 == 0 and out_h % 2 == 0
    assert out_h <= height
    if wanted == "source" or (isinstance(wanted, int) and wanted >= height):
        assert out_h >= height - 1
    output = VideoInfo(index=0, codec="h264", width=out_w, height=out_h)
    assert check_aspect(output, video) == ""


@pytest.mark.parametrize("backend", list(Backend))
def test_every_backend_has_the_broadcast_input_options_and_keeps_the_programme(
    backend: Backend, isdb: MediaInfo
) -> None:
    args = argv(backend, isdb)
    assert all(isinstance(a, str) for a in args)
    before_input = args[: args.index("-i")]
    for opt in (
        "-fflags",
        "-analyzeduration",
        "-probesize",
        "-dual_mono_mode",
        "-merge_pmt_versions",
    ):
        assert opt in before_input, opt
    assert args[args.index("-fflags") + 1] == "+discardcorrupt+genpts"
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert maps == ["0:p:1024:v:0", "0:1"]  # the programme's video, then each audio stream
    assert "-sn" in args and "-dn" in args
    assert args[args.index("-movflags") + 1] == "+faststart"
    assert args[-1] == "/out/a.mp4" and args[-3:-1] == ["-f", "mp4"]
    assert args[args.index("-progress") + 1] == "pipe:1"


def test_x264_deinterlaces_with_bwdif_and_uses_crf(isdb: MediaInfo) -> None:
    args = argv(Backend.X264, isdb)
    assert args[args.index("-vf") + 1] == (
        "bwdif=mode=send_frame:parity=auto:deint=all,scale=1280:720,setsar=sar=1"
    )
    assert args[args.index("-c:v") + 1] == "libx264"
    assert args[args.index("-crf") + 1] == "23"


def test_qsv_decodes_mpeg2_on_the_gpu_and_deinterlaces_with_vpp_qsv(isdb: MediaInfo) -> None:
    args = argv(Backend.QSV, isdb)
    assert args[args.index("-c:v") + 1] == "mpeg2_qsv"
    assert args.index("-c:v") < args.index("-i")
    assert args[args.index("-vf") + 1] == "vpp_qsv=deinterlace=advanced:w=1280:h=720,setsar=sar=1"
    encoder = len(args) - 1 - args[::-1].index("-c:v")
    assert args[encoder + 1] == "h264_qsv"
    assert args[args.index("-global_quality") + 1] == "23"
    assert "qsv=qs@va" in args


def test_vaapi_uses_deinterlace_vaapi_scale_vaapi_and_cqp(isdb: MediaInfo) -> None:
    args = argv(Backend.VAAPI, isdb)
    assert args[args.index("-vf") + 1] == (
        "deinterlace_vaapi=mode=motion_adaptive:rate=frame,scale_vaapi=w=1280:h=720,setsar=sar=1"
    )
    assert args[args.index("-rc_mode") + 1] == "CQP"
    assert args[args.index("-qp") + 1] == "23"


def test_vaapi_vbr_profile_sets_bitrate_and_maxrate(isdb: MediaInfo) -> None:
    profile = Profile(backends=[Backend.VAAPI], vaapi_rc="VBR", vaapi_bitrate="4M")
    args = argv(Backend.VAAPI, isdb, profile)
    assert args[args.index("-rc_mode") + 1] == "VBR"
    assert args[args.index("-b:v") + 1] == "4M"
    assert args[args.index("-maxrate") + 1] == "6M"


def test_vaapi_driver_is_passed_in_the_environment_not_the_argv(isdb: MediaInfo) -> None:
    command = build_command(
        Backend.VAAPI,
        BUILTIN_PROFILES["h264-intel"],
        isdb,
        Path("/rec/a.ts"),
        Path("/out/a.mp4"),
        vaapi_driver="i965",
    )
    assert command.env == {"LIBVA_DRIVER_NAME": "i965"}


def test_progressive_source_is_not_deinterlaced(isdb: MediaInfo) -> None:
    assert isdb.video is not None
    progressive = isdb.model_copy(
        update={"video": isdb.video.model_copy(update={"field_order": "progressive"})}
    )
    assert "bwdif" not in " ".join(argv(Backend.X264, progressive))
    assert "deinterlace_vaapi" not in " ".join(argv(Backend.VAAPI, progressive))


def test_audio_copy_and_channel_settings_are_honoured(isdb: MediaInfo) -> None:
    copy = Profile(backends=[Backend.X264], audio=Audio(codec="copy"))
    args = argv(Backend.X264, isdb, copy)
    assert args[args.index("-c:a:0") + 1] == "copy"
    assert "-b:a:0" not in args and "-filter:a:0" not in args


def test_hostile_file_names_stay_single_argv_items(isdb: MediaInfo) -> None:
    name = Path("/rec/ニュース $(rm -rf ~) 'a' \"b\"\n.ts")
    command = build_command(Backend.X264, BUILTIN_PROFILES["h264-x264"], isdb, name, Path("/o.mp4"))
    assert str(name) in command.argv
    assert command.argv[command.argv.index("-i") + 1] == str(name)


def test_non_ts_input_gets_no_mpegts_demuxer_options(isdb: MediaInfo) -> None:
    mp4 = isdb.model_copy(update={"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "program_id": None})
    args = argv(Backend.X264, mp4)
    assert "-merge_pmt_versions" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:v:0", "0:1"]


def test_ivtc_replaces_bwdif_with_fieldmatch_and_decimate_on_every_backend(
    isdb: MediaInfo,
) -> None:
    profile = Profile(backends=list(Backend), deinterlace="ivtc")
    x264 = argv(Backend.X264, isdb, profile)
    assert x264[x264.index("-vf") + 1] == f"{IVTC},scale=1280:720,setsar=sar=1"
    for backend in (Backend.QSV, Backend.VAAPI):
        args = argv(backend, isdb, profile)
        chain = args[args.index("-vf") + 1]
        assert chain.startswith(f"{IVTC},format=nv12,hwupload") and "deinterlace" not in chain
        assert "-hwaccel" not in args  # the matched frames come from a software decode
