"""The programme's audio in the output, encoded by real ffmpeg from TS the test makes:
bilingual stereo, ISDB dual mono, 5.1, and a layout switch at a programme boundary."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.audio_media import (
    back_to_back,
    dual_mono_aac,
    dual_mono_ts,
    layout_switch_ts,
    tone_frequency,
    ts,
)
from tests.support.media import leftovers, sha256
from worker.encode.aac_scan import scan_stream
from worker.encode.audio import plan_audio
from worker.encode.ffprobe import MediaInfo, parse_media, read_media, run_ffprobe
from worker.encode.pipeline import Attempt, encode_job
from worker.encode.verify import verify_output
from worker.errors import SourceError, VerifyError
from worker.jobs import EncodeResult, Job
from worker.profiles import Audio, Backend, Profile
from worker.settings.model import Settings, VerifySettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("audio")
    return {
        "bilingual": ts(base / "bilingual.ts", [(440, 2, "jpn"), (1000, 2, "eng")]),
        "dual": dual_mono_ts(base / "dual.ts"),
        "dual_unnamed": dual_mono_ts(base / "dual_unnamed.ts", languages=""),
        "surround": ts(base / "surround.ts", [(600, 6, "jpn")]),
        "up": layout_switch_ts(base / "up.ts", 2, 6),
        "down": layout_switch_ts(base / "down.ts", 6, 2),
        # A 5.1 film, then a dual-mono foreign drama on the same stream.
        "film_then_dual": back_to_back(
            base / "film_then_dual.ts",
            ts(base / "film.ts", [(440, 6, "jpn")]),
            dual_mono_ts(base / "drama.ts", offset=2.1),
        ),
    }


def encode(source: Path, tmp_path: Path, audio: Audio) -> tuple[EncodeResult, MediaInfo]:
    """Encode a copy of ``source`` with x264 and this audio; the result and the output."""
    copy = Path(shutil.copy2(source, tmp_path / source.name))
    before = sha256(copy)
    profile = Profile(backends=[Backend.X264], x264_preset="ultrafast", height=180, audio=audio)
    settings = Settings(state_dir=tmp_path / "state", profiles={"p": profile})
    result = encode_job(
        Job.create(str(copy), "p"), Attempt(settings=settings, backends=[Backend.X264])
    )
    assert sha256(copy) == before and leftovers(tmp_path) == []
    out = Path(result.output)
    return result, parse_media(out, run_ffprobe("ffprobe", out))


def test_ffmpegs_demuxer_reports_a_two_language_descriptor_as_one_tag(
    sources: dict[str, Path],
) -> None:
    info = read_media("ffprobe", sources["dual"])
    assert [s.languages for s in info.audio] == [("jpn", "eng")]
    assert [s.channels for s in info.audio] == [2]  # dual mono probes as plain stereo
    assert read_media("ffprobe", sources["bilingual"]).audio[1].languages == ("eng",)


def test_the_aac_frames_tell_dual_mono_from_stereo_and_every_layout_met(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    dual = scan_stream("ffmpeg", sources["dual"], 1, timeout=60)
    assert dual.dual_mono and dual.channels == {2} and dual.frames > 50
    stereo = scan_stream("ffmpeg", sources["bilingual"], 1, timeout=60)
    assert not stereo.dual_mono and stereo.channels == {2}
    assert scan_stream("ffmpeg", sources["up"], 1, timeout=60).channels == {2, 6}
    assert scan_stream("ffmpeg", sources["down"], 1, timeout=60).max_channels == 6
    # ffmpeg's own decoder takes the synthetic stream for dual mono: "main" copies the
    # main side over the sub side, "both" keeps them apart.
    aac = dual_mono_aac(tmp_path / "d.aac", 440, 1000, 1.0)
    for mode, silent in (("main", True), ("both", False)):
        pan = subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostdin", "-dual_mono_mode", mode, "-i", str(aac),
             "-af", "pan=mono|c0=c0-c1,astats=measure_perchannel=none:measure_overall=Peak_level",
             "-f", "null", "-"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stderr  # fmt: skip
        assert ("Peak level dB: -inf" in pan) is silent, pan


def test_a_stream_that_cannot_be_read_or_never_ends_is_one_clear_source_error(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match=r"cannot read audio stream #7: .*matches no streams"):
        scan_stream("ffmpeg", sources["dual"], 7, timeout=60)
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)  # a recording nobody writes to: ffmpeg waits for ever
    with pytest.raises(SourceError, match=r"reading audio stream #1 took over 1 s"):
        scan_stream("ffmpeg", fifo, 1, timeout=1.0)


TONES = [440, 1000, 1700]
shapes = st.lists(
    st.tuples(st.sampled_from([1, 2, 6]), st.sampled_from(["", "jpn", "eng", "kor"])),
    min_size=1,
    max_size=3,
)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=shapes,
    channels=st.sampled_from([2, "source"]),
    dual_mono=st.sampled_from(["main", "split"]),
)
@example(shape=[(2, "jpn"), (2, "eng")], channels=2, dual_mono="split")  # bilingual
def test_every_stream_is_one_track_in_order_with_its_language_and_layout(
    shape: list[tuple[int, str]], channels: int | str, dual_mono: str
) -> None:
    """Ordinary streams, mono to 5.1, named or not: never split, never reordered."""
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        (base / "made").mkdir()
        tones = [(TONES[n], width, language) for n, (width, language) in enumerate(shape)]
        source = ts(base / "made" / "rec.ts", tones)
        audio = Audio(channels=channels, dual_mono=dual_mono)  # type: ignore[arg-type]
        result, out = encode(source, base, audio)
        assert result.audio_streams == len(shape)
        assert [s.languages for s in out.audio] == [(lang,) if lang else () for _, lang in shape]
        wanted = [width if channels == "source" else channels for width, _ in shape]
        assert [s.channels for s in out.audio] == wanted
        for n in range(len(shape)):
            assert tone_frequency(Path(result.output), n) == pytest.approx(TONES[n], rel=0.03)


@pytest.mark.parametrize("name", ["dual", "dual_unnamed"])
def test_split_turns_dual_mono_into_two_mono_tracks_main_then_sub(
    sources: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """Tagged with the descriptor's two languages, or jpn and eng without one."""
    result, out = encode(sources[name], tmp_path, Audio(dual_mono="split"))
    assert [s.languages for s in out.audio] == [("jpn",), ("eng",)]
    assert [s.channels for s in out.audio] == [1, 1]
    output = Path(result.output)
    assert tone_frequency(output, 0) == pytest.approx(440, rel=0.03)
    assert tone_frequency(output, 1) == pytest.approx(1000, rel=0.03)


def test_a_stream_that_turns_dual_mono_midway_splits_into_two_mono_tracks_throughout(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    result, out = encode(sources["film_then_dual"], tmp_path, Audio(dual_mono="split"))
    assert [(s.channels, s.languages) for s in out.audio] == [(1, ("jpn",)), (1, ("eng",))]
    sub = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:1", "-show_entries", "frame=channels",
         "-of", "csv=p=0", result.output],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert set(sub) == {"1"} and len(sub) > 150  # both parts, each one channel


def test_without_split_dual_mono_keeps_the_main_side_on_both_channels(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    result, out = encode(sources["dual"], tmp_path, Audio())
    assert [s.channels for s in out.audio] == [2]
    assert out.audio[0].languages == ("jpn",)
    assert tone_frequency(Path(result.output), 0) == pytest.approx(440, rel=0.03)


@pytest.mark.parametrize(
    ("name", "channels", "expected"),
    [("surround", "source", 6), ("up", "source", 6), ("down", "source", 6), ("down", 2, 2)],
)
def test_one_layout_from_start_to_end_with_audio_in_sync(
    sources: dict[str, Path], tmp_path: Path, name: str, channels: int | str, expected: int
) -> None:
    """5.1 stays 5.1 with channels = "source", and a switch 2.0 <-> 5.1 gives one layout
    throughout; verification, which passed or encode_job would have raised, checked
    each audio end against the video's."""
    result, out = encode(sources[name], tmp_path, Audio(channels=channels))  # type: ignore[arg-type]
    assert [s.channels for s in out.audio] == [expected]
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "frame=channels",
         "-of", "csv=p=0", result.output],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert set(frames) == {str(expected)} and len(frames) > 80


def test_audio_that_lost_time_at_the_switch_fails_verification_as_out_of_sync(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    """0.6 s of audio dropped at the boundary and the rest played on: the audio still
    lasts the programme within the duration tolerance, but ends early against the video."""
    source = sources["up"]
    result, _ = encode(source, tmp_path, Audio())
    info = read_media("ffprobe", source)
    tracks = plan_audio(Audio(), info)
    drifted = tmp_path / "drifted.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", result.output, "-map", "0:v:0", "-map", "0:a:0",
         "-af", "aselect='not(between(t,1.8,2.4))',asetpts=N/SR/TB",
         "-metadata:s:a:0", "language=jpn", "-c:v", "copy",
         "-c:a", "aac", "-movflags", "+faststart", str(drifted)],
        check=True, timeout=120,
    )  # fmt: skip
    with pytest.raises(
        VerifyError, match=r"audio stream #1 \(aac\) is out of sync: it ends 0\.[5-7]\d s earlier"
    ) as failure:
        verify_output(drifted, info, VerifySettings(), audio=tracks)
    assert str(failure.value).count(";") == 0, failure.value  # the only problem found
    # The per-stream duration check alone lets it through.
    verify_output(drifted, info, VerifySettings(sync_tolerance_s=5.0), audio=tracks)


@pytest.fixture(scope="module")
def broadcast_loop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of 1080i MPEG-2 at 3 Mb/s and AAC, as the fake tuner carried them.

    Not worker.encode.sample's clip: at its 6 Mb/s the audio's last packets stay inside
    ffprobe's end window and the estimate happens to be right."""
    path = tmp_path_factory.mktemp("loop") / "loop.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=1440x1080:rate=30000/1001", "-f", "lavfi", "-i",
         "sine=frequency=800:sample_rate=48000", "-t", "6", "-c:v", "mpeg2video", "-b:v", "3M",
         "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


@settings(
    max_examples=5, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(join=st.floats(0.0, 3.0), packets=st.integers(9000, 30000))
@example(join=1.3, packets=30000)  # ffprobe's estimate put this audio's end 0.30 s early
def test_a_recording_joined_and_cut_anywhere_verifies_with_its_audio_in_sync(
    broadcast_loop: Path, tmp_path: Path, join: float, packets: int
) -> None:
    """A tuner's recording starts and stops at any packet of a running stream. ffprobe
    only estimates a TS stream's length (from a window at its end), and the estimate of
    an audio stream whose last packets sit earlier in the file is off by a few tenths of
    a second: the sync check must measure where each stream really ends."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        recording = Path(work) / "tuner" / "rec.m2ts"
        recording.parent.mkdir()
        looped = subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{join:.3f}", "-stream_loop", "3",
             "-i", str(broadcast_loop), "-map", "0", "-c", "copy", "-f", "mpegts", "pipe:1"],
            capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        recording.write_bytes(looped[: 188 * packets])
        (Path(work) / "encode").mkdir()
        result, out = encode(recording, Path(work) / "encode", Audio())
        assert result.output.endswith(".mp4") and out.video is not None
        video, audio = (s.end_s for s in out.streams)
        assert video is not None and audio is not None and abs(video - audio) < 0.5


def test_a_failed_verification_names_the_output_and_leaves_nothing(
    broadcast_loop: Path, tmp_path: Path
) -> None:
    """The error a user reads (in `kamado status`, in EPGStation's log) names the output
    the job was for, not the temp file it never sees; nothing is left behind."""
    copy = Path(shutil.copy2(broadcast_loop, tmp_path / "番組 #1.ts"))
    before = sha256(copy)
    profile = Profile(backends=[Backend.X264], x264_preset="ultrafast", height=180)
    strict = {"sync_tolerance_s": 0.0, "duration_tolerance_s": 0.0, "duration_tolerance_ratio": 0}
    settings = Settings(state_dir=tmp_path / "state", profiles={"p": profile}, verify=strict)
    job = Job.create(str(copy), "p")
    with pytest.raises(VerifyError) as failure:
        encode_job(job, Attempt(settings=settings, backends=[Backend.X264]))
    message = str(failure.value)
    assert message.startswith(f"{tmp_path / '番組 #1.mp4'}: verification failed: "), message
    assert message.endswith(" (the encode was discarded)") and ".kamado-" not in message
    assert failure.value.path == job.output
    assert [p.name for p in tmp_path.iterdir()] == [copy.name]  # no output, no temp
    assert sha256(copy) == before
