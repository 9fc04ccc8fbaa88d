"""The caption part of every backend's argv, and what a job decides about captions."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from worker.captions import (
    CaptionPlan,
    CaptionResult,
    CaptionStatus,
    CaptionSupport,
    arib_decoders,
    caption_line,
    describe_support,
    plan_captions,
    sidecar_path,
)
from worker.encode.argv import build_command
from worker.encode.ffprobe import MediaInfo, parse_media
from worker.profiles import BUILTIN_PROFILES, Backend

FIXTURE = Path(__file__).parents[2] / "fixtures" / "ffprobe_synth_isdb_1080i.json"
SOURCE, OUTPUT = Path("/rec/a.ts"), Path("/out/.kamado-j-a.mp4")
# Lines of `ffmpeg -decoders` from Debian 12's libavcodec-extra59 and an ffmpeg 6.1 build.
LIBARIBB24 = (
    " S..... libaribb24           libaribb24 ARIB STD-B24 caption decoder (codec arib_caption)"
)
LIBARIBCAPTION = " S..... libaribcaption       ARIB STD-B24 caption decoder (codec arib_caption)"
OTHERS = [
    " S..... ass                  ASS (Advanced SubStation Alpha) subtitle",
    " V....D mpeg2video           MPEG-2 video",
    " S..... dvbsub               DVB subtitles (codec dvb_subtitle)",
]
WITH = CaptionSupport(decoder="libaribb24")
WITHOUT = CaptionSupport(reason="this ffmpeg has no ARIB caption decoder")


def isdb() -> MediaInfo:
    return parse_media(SOURCE, json.loads(FIXTURE.read_text()))


def argv(backend: Backend, plan: CaptionPlan | None) -> list[str]:
    profile = BUILTIN_PROFILES["h264-auto"]
    return build_command(backend, profile, isdb(), SOURCE, OUTPUT, captions=plan).argv


def test_an_arib_decoder_is_found_by_its_codec_whatever_its_name() -> None:
    assert arib_decoders("\n".join([*OTHERS, LIBARIBB24])) == ["libaribb24"]
    assert arib_decoders("\n".join([LIBARIBCAPTION, *OTHERS])) == ["libaribcaption"]
    assert arib_decoders("\n".join(OTHERS)) == []


@given(
    backend=st.sampled_from(list(Backend)),
    streams=st.lists(st.integers(0, 40), min_size=1, max_size=3, unique=True),
    fmt=st.sampled_from(["none", "srt", "ass"]),
)
def test_kept_captions_follow_video_and_audio_as_mov_text_and_the_sidecar_is_a_second_output(
    backend: Backend, streams: list[int], fmt: str
) -> None:
    temp = Path(f"/out/.kamado-j-a.mp4.{fmt}")
    plan = plan_captions(streams, keep=True, sidecar=fmt, support=WITH, sidecar_temp=temp)  # type: ignore[arg-type]
    args = argv(backend, plan)
    without = argv(backend, None)
    assert "-sn" not in args and "-sn" in without
    assert args.index("-fix_sub_duration") < args.index("-i")
    mp4 = args.index(str(OUTPUT))
    maps = [args[i + 1] for i, a in enumerate(args[:mp4]) if a == "-map"]
    assert maps[-len(streams) :] == [f"0:{s}" for s in streams]  # after video and audio
    assert maps[: -len(streams)] == [m for i, m in enumerate(without) if without[i - 1] == "-map"]
    assert args[args.index("-c:s") + 1] == "mov_text"
    tail = args[mp4 + 1 :]
    if fmt == "none":
        assert tail == []
    else:
        assert tail == ["-map", f"0:{streams[0]}", "-c:s", fmt, "-f", fmt, str(temp)]


@given(
    streams=st.lists(st.integers(0, 40), max_size=3, unique=True),
    keep=st.booleans(),
    support=st.sampled_from([WITH, WITHOUT]),
    fmt=st.sampled_from(["none", "srt", "ass"]),
)
def test_every_caption_decision_is_one_status_and_only_kept_ones_map_streams(
    streams: list[int], keep: bool, support: CaptionSupport, fmt: str
) -> None:
    temp = Path(f"/out/.kamado-j-a.mp4.{fmt}")
    plan = plan_captions(streams, keep=keep, sidecar=fmt, support=support, sidecar_temp=temp)  # type: ignore[arg-type]
    if not streams:
        assert plan.status is CaptionStatus.NONE
    elif not keep:
        assert plan.status is CaptionStatus.OFF
    elif not support.available:
        assert plan.status is CaptionStatus.DROPPED and support.reason in plan.reason
    else:
        assert plan.status is CaptionStatus.KEPT
    assert bool(plan.streams) == (plan.status is CaptionStatus.KEPT)
    args = argv(Backend.X264, plan)
    assert ("-sn" in args) != (plan.status is CaptionStatus.KEPT)
    assert plan.result().status is plan.status


@given(stem=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
                    min_size=1, max_size=40), fmt=st.sampled_from(["srt", "ass"]))  # fmt: skip
def test_the_sidecar_sits_beside_the_output_with_its_stem(stem: str, fmt: str) -> None:
    assert sidecar_path(f"/out/{stem}.mp4", fmt) == f"/out/{stem}.{fmt}"
    assert sidecar_path(f"sftp://nas/v/{stem} (2).mp4", fmt) == f"sftp://nas/v/{stem} (2).{fmt}"


@given(
    status=st.sampled_from(list(CaptionStatus)),
    reason=st.text(max_size=30),
    sidecar=st.none() | st.text(min_size=1, max_size=30),
)
def test_a_jobs_caption_line_names_its_status_reason_and_sidecar(
    status: CaptionStatus, reason: str, sidecar: str | None
) -> None:
    line = caption_line(CaptionResult(status=status, reason=reason, sidecar=sidecar))
    assert line.startswith(f"captions: {status.value}")
    assert reason in line and (sidecar is None or f"sidecar {sidecar}" in line)


def test_the_probe_words_say_kept_or_dropped_with_the_reason() -> None:
    assert describe_support(WITH) == "ARIB captions: kept as mov_text (decoder libaribb24)"
    assert describe_support(WITHOUT) == f"ARIB captions: dropped ({WITHOUT.reason})"
    assert describe_support(None) == "ARIB captions: not probed"
