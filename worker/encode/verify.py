"""Output verification: a job is done only when its output is real, complete H.264 + audio.

Exit 0 from ffmpeg is not success (a 0-byte MP4 or a 0.2 s "finished" encode are the
classic failures). ffprobe must read the output as H.264 with the planned audio tracks
(worker/encode/audio.py: number, order, languages, channels); its duration, and each of its
video and audio streams', must match the source programme's within a tolerance; each
audio track must end as far from the video as its source stream did (sync); its display
aspect must be the source's, ``moov`` must precede ``mdat`` (faststart) and the video
must decode.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from worker import process
from worker.encode.audio import AudioTrack
from worker.encode.ffprobe import (
    MediaInfo,
    StreamTime,
    VideoInfo,
    parse_media,
    run_ffprobe_with_log,
    with_measured_ends,
)
from worker.errors import SourceError, VerifyError
from worker.settings.model import VerifySettings

DECODE_TIMEOUT_PER_S = 0.5  # seconds of decode check allowed per second of video


def top_level_boxes(path: Path, limit: int = 64) -> list[str]:
    """The names of an MP4's top-level boxes in file order."""
    names: list[str] = []
    size = path.stat().st_size
    with path.open("rb") as fh:
        offset = 0
        while offset + 8 <= size and len(names) < limit:
            fh.seek(offset)
            header = fh.read(16)
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1 and len(header) == 16:
                length = struct.unpack(">Q", header[8:16])[0]
            elif length == 0:
                length = size - offset
            if length < 8:
                break
            names.append(kind.decode("latin-1"))
            offset += length
    return names


def _allowed(source_s: float, cfg: VerifySettings) -> float:
    return max(cfg.duration_tolerance_s, cfg.duration_tolerance_ratio * source_s)


def check_duration(output_s: float | None, source_s: float | None, cfg: VerifySettings) -> str:
    """An empty string when the durations agree, else the reason they do not."""
    if output_s is None:
        return "output has no duration"
    if source_s is None:
        return ""
    allowed = _allowed(source_s, cfg)
    if abs(output_s - source_s) > allowed:
        return (
            f"duration {output_s:.2f} s differs from the source's {source_s:.2f} s "
            f"by more than {allowed:.2f} s"
        )
    return ""


def check_streams(output: MediaInfo, source: MediaInfo, cfg: VerifySettings) -> list[str]:
    """Each output video and audio stream against the source programme's length, and
    (when each is close enough to it) against each other: what is wrong, naming the stream."""
    programme_s = source.programme_duration_s
    if programme_s is None:
        return []
    allowed = _allowed(programme_s, cfg)
    problems = []
    timed = []
    for stream in output.streams:
        if stream.duration_s is None:
            problems.append(f"{stream.label} has no duration")
            continue
        timed.append(stream)
        if abs(stream.duration_s - programme_s) > allowed:
            problems.append(
                f"{stream.label} lasts {stream.duration_s:.2f} s, the source programme "
                f"{programme_s:.2f} s (more than {allowed:.2f} s apart)"
            )
    if not problems and len(timed) > 1:
        short = min(timed, key=lambda t: t.duration_s or 0.0)
        long = max(timed, key=lambda t: t.duration_s or 0.0)
        gap = (long.duration_s or 0.0) - (short.duration_s or 0.0)
        if gap > allowed:
            problems.append(
                f"{short.label} ends {gap:.2f} s before {long.label} (more than {allowed:.2f} s)"
            )
    return problems


def check_audio(output: MediaInfo, tracks: list[AudioTrack]) -> list[str]:
    """The output's audio streams against the planned tracks: their number, order,
    languages and channels."""
    if len(output.audio) != len(tracks):
        return [f"{len(output.audio)} audio stream(s), {len(tracks)} expected"]
    problems = []
    for n, (stream, track) in enumerate(zip(output.audio, tracks, strict=True)):
        language = stream.languages[0] if stream.languages else None
        if language != track.language:
            problems.append(
                f"audio track {n} is tagged {language or 'und'}, not {track.language or 'und'}"
            )
        if track.channels is not None and stream.channels != track.channels:
            problems.append(f"audio track {n} has {stream.channels} channels, not {track.channels}")
    return problems


def _timed(info: MediaInfo, index: int) -> StreamTime | None:
    return next((s for s in info.streams if s.index == index), None)


def check_sync(
    output: MediaInfo, source: MediaInfo, tracks: list[AudioTrack], cfg: VerifySettings
) -> list[str]:
    """Audio still with the video: each audio track must end as far from the video's end
    as its source stream did, within ``sync_tolerance_s`` (audio lost or added in the
    middle, at a layout switch for example, moves the end)."""
    if output.video is None or source.video is None or len(output.audio) != len(tracks):
        return []
    out_video, src_video = _timed(output, output.video.index), _timed(source, source.video.index)
    out_video_end = out_video.end_s if out_video else None
    src_video_end = src_video.end_s if src_video else None
    if out_video_end is None or src_video_end is None:
        return []
    problems = []
    for stream, track in zip(output.audio, tracks, strict=True):
        out_audio, src_audio = _timed(output, stream.index), _timed(source, track.source)
        out_end = out_audio.end_s if out_audio else None
        src_end = src_audio.end_s if src_audio else None
        if out_audio is None or out_end is None or src_end is None:
            continue
        drift = (out_end - out_video_end) - (src_end - src_video_end)
        if abs(drift) > cfg.sync_tolerance_s:
            way = "later" if drift > 0 else "earlier"
            problems.append(
                f"{out_audio.label} is out of sync: it ends {abs(drift):.2f} s {way} against "
                f"the video than in the source (more than {cfg.sync_tolerance_s:.2f} s)"
            )
    return problems


def check_aspect(output: VideoInfo, source: VideoInfo) -> str:
    """An empty string when the output shows the source's display aspect, else the reason.

    Sizes are rounded to even numbers of pixels, so one pixel each way is allowed: a side
    ``n`` that was rounded from an exact ``n ± 1`` is off by at most ``1 / (n - 1)``.
    """
    want, got = source.display_aspect, output.display_aspect
    if not want or not got:
        return ""
    slack = 1.0 / max(1, output.width - 1) + 1.0 / max(1, output.height - 1)
    if abs(got / want - 1.0) > slack:
        return (
            f"display aspect {got:.4f} ({output.width}x{output.height}, SAR "
            f"{output.sar[0]}:{output.sar[1]}) is not the source's {want:.4f} "
            f"({source.width}x{source.height}, SAR {source.sar[0]}:{source.sar[1]})"
        )
    return ""


def decode_args(mode: str) -> list[str]:
    """ffprobe options that also decode the output (every frame, or keyframes only)."""
    if mode == "full":
        return ["-count_frames"]
    if mode == "keyframes":
        # One decoder thread: a handful of keyframes do not pay for a frame-thread pool.
        return ["-threads", "1", "-skip_frame", "nokey", "-count_frames"]
    return []


def _problems(
    info: MediaInfo,
    data: dict[str, Any],
    source: MediaInfo,
    cfg: VerifySettings,
    tracks: list[AudioTrack] | None,
) -> list[str]:
    """What is wrong with an output ffprobe read, compared with its source."""
    problems = []
    if info.video is None:
        problems.append("no video stream")
    elif info.video.codec != "h264":
        problems.append(f"video is {info.video.codec}, not h264")
    elif not info.video_packets:
        problems.append("the video stream has no frames")
    elif cfg.decode != "off" and not _decoded_frames(data, info.video.index):
        problems.append("no frame of the video stream could be decoded")
    if info.video is not None and source.video is not None:
        aspect_problem = check_aspect(info.video, source.video)
        if aspect_problem:
            problems.append(aspect_problem)
    if tracks is not None:
        problems += check_audio(info, tracks)
        problems += check_sync(info, source, tracks, cfg)
    elif len(info.audio_codecs) != len(source.audio_codecs):
        problems.append(
            f"{len(info.audio_codecs)} audio stream(s), the source has {len(source.audio_codecs)}"
        )
    duration_problem = check_duration(info.duration_s, source.duration_s, cfg)
    if duration_problem:
        problems.append(duration_problem)
    problems += check_streams(info, source, cfg)
    return problems


def _decoded_frames(data: dict[str, Any], index: int) -> int:
    streams: list[dict[str, Any]] = data.get("streams", [])
    stream = next((s for s in streams if s.get("index") == index), {})
    frames = str(stream.get("nb_read_frames", ""))
    return int(frames) if frames.isdigit() else 0


def verify_output(
    output: Path,
    source: MediaInfo,
    cfg: VerifySettings,
    *,
    ffprobe: str = "ffprobe",
    audio: list[AudioTrack] | None = None,
) -> MediaInfo:
    """Check an encoded file against its source (and, given ``audio``, its planned audio
    tracks and their sync); raise VerifyError naming what is wrong."""
    if not output.is_file():
        raise VerifyError(f"{output}: no output file was produced", path=output)
    if output.stat().st_size == 0:
        raise VerifyError(f"{output}: output is empty (0 bytes)", path=output)
    boxes = top_level_boxes(output)
    if "moov" not in boxes:
        raise VerifyError(f"{output}: not a complete MP4 (no moov box)", path=output)
    if "mdat" in boxes and boxes.index("moov") > boxes.index("mdat"):
        raise VerifyError(f"{output}: moov is after mdat (not faststart)", path=output)
    # One ffprobe reads the streams and, unless verify.decode is off, decodes the video:
    # a second process (ffmpeg -f null) cost a whole start-up per job.
    timeout = 60.0 + DECODE_TIMEOUT_PER_S * (source.duration_s or 0.0)
    try:
        data, log = run_ffprobe_with_log(ffprobe, output, decode_args(cfg.decode), timeout=timeout)
    except SourceError as e:
        raise VerifyError(f"{output}: output is unreadable: {e}", path=output) from e
    if log.strip():
        detail = process.last_line(log)
        raise VerifyError(f"{output}: decode check failed: {detail}", path=output)
    info = parse_media(output, data)
    problems = _problems(info, data, source, cfg, audio)
    if problems and source.is_mpegts:
        # The sync and length checks compare stream ends, and ffprobe only estimates a
        # TS stream's: before failing, measure the source's (one more ffprobe, only here).
        measured = with_measured_ends(ffprobe, source)
        if measured != source:
            problems = _problems(info, data, measured, cfg, audio)
    if problems:
        raise VerifyError(f"{output}: verification failed: {'; '.join(problems)}", path=output)
    return info
