"""The output's audio tracks and their argv, for every shape of the programme's audio."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.encode.argv import build_command
from worker.encode.audio import AudioTrack, audio_args, plan_audio, streams_to_scan
from worker.encode.ffprobe import AudioStream, MediaInfo, StreamTime, VideoInfo
from worker.encode.verify import check_audio, check_sync
from worker.errors import ConfigError
from worker.profiles import Audio, Backend, Profile
from worker.settings.model import VerifySettings, load_settings

LANGUAGES = st.sampled_from(["jpn", "eng", "kor", "zho", "fra"])


@st.composite
def streams(draw: st.DrawFn) -> list[AudioStream]:
    """Up to four audio streams: AAC or MP2, 1 to 8 channels, a layout switch to a wider
    one, dual mono (read or not), none, one or two descriptor languages."""
    count = draw(st.integers(0, 4))
    out = []
    for n in range(count):
        channels = draw(st.sampled_from([1, 2, 6, 8]))
        out.append(
            AudioStream(
                index=n + 1,
                codec=draw(st.sampled_from(["aac", "aac", "mp2"])),
                channels=channels,
                languages=tuple(draw(st.lists(LANGUAGES, max_size=2))),
                dual_mono=draw(st.sampled_from([None, True, False])),
                max_channels=draw(st.sampled_from([None, channels, 6, 8])),
            )
        )
    return out


audios = st.builds(
    Audio,
    codec=st.just("aac"),
    channels=st.sampled_from([1, 2, 6, "source"]),
    dual_mono=st.sampled_from(["main", "sub", "both", "auto", "split"]),
)


def media(audio: list[AudioStream]) -> MediaInfo:
    return MediaInfo(
        path="/rec/a.ts", format_name="mpegts", duration_s=2.0, size_bytes=1,
        video=VideoInfo(index=0, codec="mpeg2video", width=720, height=480, sar=(8, 9)),
        audio_codecs=[s.codec for s in audio], program_id=1024, audio=audio,
    )  # fmt: skip


def dual(stream: AudioStream) -> bool:
    read = stream.dual_mono
    return read if read is not None else len(stream.languages) == 2


@settings(max_examples=120, deadline=None)
@given(sources=streams(), audio=audios)
def test_every_stream_is_kept_in_order_and_only_dual_mono_is_split(
    sources: list[AudioStream], audio: Audio
) -> None:
    tracks = plan_audio(audio, media(sources))
    assert [t.source for t in tracks] == sorted(t.source for t in tracks)
    for stream in sources:
        mine = [t for t in tracks if t.source == stream.index]
        split = audio.dual_mono == "split" and stream.codec == "aac" and dual(stream)
        if split:
            assert [t.side for t in mine] == ["main", "sub"]
            assert [t.channels for t in mine] == [1, 1]
            named = [*stream.languages, "jpn", "eng"][:2]
            if len(stream.languages) == 1:
                named = [stream.languages[0], "eng"]
            assert [t.language for t in mine] == named
        else:
            assert len(mine) == 1 and mine[0].side == "all"
            wanted = audio.channels
            if wanted == "source":
                wanted = max(stream.max_channels or 0, stream.channels)
            assert mine[0].channels == wanted
            if audio.dual_mono == "sub" and len(stream.languages) == 2:
                assert mine[0].language == stream.languages[1]
            else:
                assert mine[0].language == (stream.languages[0] if stream.languages else None)


@settings(max_examples=120, deadline=None)
@given(sources=streams(), audio=audios)
def test_the_argv_maps_encodes_and_tags_each_track_once_in_order(
    sources: list[AudioStream], audio: Audio
) -> None:
    tracks = plan_audio(audio, media(sources))
    args = audio_args(audio, tracks)
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert maps == [
        f"[dm{t.source}{t.side}]" if t.side != "all" else f"0:{t.source}" for t in tracks
    ]
    for n, track in enumerate(tracks):
        assert args[args.index(f"-c:a:{n}") + 1] == "aac"
        assert args[args.index(f"-ac:a:{n}") + 1] == str(track.channels)
        assert args[args.index(f"-metadata:s:a:{n}") + 1] == f"language={track.language or 'und'}"
        # Every encoded track is resampled to its timestamps, once.
        graph = args[args.index("-filter_complex") + 1] if "-filter_complex" in args else ""
        simple = args[args.index(f"-filter:a:{n}") + 1] if f"-filter:a:{n}" in args else ""
        resampled = simple if track.side == "all" else graph
        assert "aresample=async=1" in resampled
    assert f"-c:a:{len(tracks)}" not in args
    split = {t.source for t in tracks if t.side != "all"}
    graph = args[args.index("-filter_complex") + 1].split(";") if split else []
    assert len(graph) == len(split)


@given(sources=streams())
def test_copy_keeps_each_stream_whole_and_never_reads_it_first(
    sources: list[AudioStream],
) -> None:
    audio = Audio(codec="copy", channels="source")
    tracks = plan_audio(audio, media(sources))
    assert [(t.source, t.side, t.channels) for t in tracks] == [
        (s.index, "all", None) for s in sources
    ]
    assert streams_to_scan(audio, media(sources)) == []
    args = audio_args(audio, tracks)
    assert [args[i + 1] for i, a in enumerate(args) if a.startswith("-c:a:")] == ["copy"] * len(
        sources
    )


def test_only_source_layouts_and_splits_read_the_aac_streams_first() -> None:
    sources = [AudioStream(index=1, codec="aac"), AudioStream(index=2, codec="mp2")]
    assert streams_to_scan(Audio(), media(sources)) == []
    assert streams_to_scan(Audio(channels="source"), media(sources)) == [1]
    assert streams_to_scan(Audio(dual_mono="split"), media(sources)) == [1]


def test_a_split_profile_decodes_both_sides_and_maps_the_split_halves() -> None:
    sources = [AudioStream(index=1, codec="aac", channels=2, languages=("jpn", "eng"))]
    profile = Profile(backends=[Backend.X264], audio=Audio(dual_mono="split"))
    argv = build_command(Backend.X264, profile, media(sources), Path("/a.ts"), Path("/a.mp4")).argv
    assert argv[argv.index("-dual_mono_mode") + 1] == "both"
    assert argv[argv.index("-filter_complex") + 1] == (
        "[0:1]aresample=async=1,channelsplit=channel_layout=stereo[dm1main][dm1sub]"
    )
    assert argv[argv.index("-b:a:0") + 1] == "96k"  # half the stereo bitrate per mono side


def test_split_with_copy_is_refused_naming_both_settings() -> None:
    with pytest.raises(ValidationError, match='dual_mono = "split" needs codec = "aac"'):
        Audio(codec="copy", dual_mono="split")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('channels = "surround"', r'audio\.channels .*from 1 to 8 or "source"'),
        ("channels = 0", r"audio\.channels"),
        ('dual_mono = "both-sides"', r"audio\.dual_mono"),
        ('codec = "copy"\ndual_mono = "split"', r'dual_mono = "split" needs codec = "aac"'),
    ],
)
def test_a_bad_audio_setting_in_the_config_is_one_clear_error(
    tmp_path: Path, line: str, reason: str
) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(f'[profiles.p]\nbackends = ["x264"]\n[profiles.p.audio]\n{line}\n')
    with pytest.raises(ConfigError, match=reason) as failure:
        load_settings(config)
    assert "profiles" in str(failure.value)


def test_channels_source_is_written_in_toml(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(
        '[profiles.p]\nbackends = ["x264"]\n[profiles.p.audio]\n'
        'channels = "source"\ndual_mono = "split"\n'
    )
    audio = load_settings(config).profiles["p"].audio
    assert (audio.channels, audio.dual_mono) == ("source", "split")


def timed(index: int, kind: str, start: float, duration: float) -> StreamTime:
    return StreamTime(index=index, kind=kind, codec="aac", start_s=start, duration_s=duration)  # type: ignore[arg-type]


@settings(max_examples=120, deadline=None)
@given(
    source_gap=st.floats(-1.0, 1.0),
    shift=st.floats(-3.0, 3.0),
    drift=st.floats(-2.0, 2.0),
    tolerance=st.floats(0.05, 1.0),
)
def test_sync_fails_exactly_when_an_audio_end_moved_against_the_video_by_more_than_allowed(
    source_gap: float, shift: float, drift: float, tolerance: float
) -> None:
    """Whatever the source's own offset and whatever shift the whole output got."""
    source = media([AudioStream(index=1, codec="aac", channels=2)]).model_copy(
        update={
            "streams": [timed(0, "video", 1.4, 10.0), timed(1, "audio", 1.4, 10.0 + source_gap)]
        }
    )
    output = source.model_copy(
        update={
            "audio": [AudioStream(index=1, codec="aac", channels=2)],
            "streams": [
                timed(0, "video", shift, 10.0),
                timed(1, "audio", shift, 10.0 + source_gap + drift),
            ],
        }
    )
    track = AudioTrack(source=1, side="all", language=None, channels=2)
    problems = check_sync(output, source, [track], VerifySettings(sync_tolerance_s=tolerance))
    if abs(drift) > tolerance + 1e-6:
        assert len(problems) == 1 and "out of sync" in problems[0]
    elif abs(drift) < tolerance - 1e-6:
        assert problems == []


def test_a_track_with_the_wrong_language_or_layout_is_named() -> None:
    output = media(
        [
            AudioStream(index=1, codec="aac", channels=1, languages=("eng",)),
            AudioStream(index=2, codec="aac", channels=2),
        ]
    )
    tracks = [AudioTrack(1, "main", "jpn", 1), AudioTrack(1, "sub", "eng", 1)]
    assert check_audio(output, tracks) == [
        "audio track 0 is tagged eng, not jpn",
        "audio track 1 is tagged und, not eng",
        "audio track 1 has 2 channels, not 1",
    ]
    assert check_audio(output, tracks[:1]) == ["2 audio stream(s), 1 expected"]
