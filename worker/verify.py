"""Output verification: a job is done only when its output is real, complete H.264 + audio.

Exit 0 from ffmpeg is not success (a 0-byte MP4 or a 0.2 s "finished" encode are the
classic failures). The output must probe as H.264 with the source's audio streams, its
duration must match the source's within a tolerance, ``moov`` must precede ``mdat``
(faststart) and the video must decode.
"""

from __future__ import annotations

import struct
from pathlib import Path

from worker import process
from worker.errors import ProcessError, SourceError, VerifyError
from worker.probe import MediaInfo, parse_media, run_ffprobe
from worker.settings import VerifySettings

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


def check_duration(output_s: float | None, source_s: float | None, cfg: VerifySettings) -> str:
    """An empty string when the durations agree, else the reason they do not."""
    if output_s is None:
        return "output has no duration"
    if source_s is None:
        return ""
    allowed = max(cfg.duration_tolerance_s, cfg.duration_tolerance_ratio * source_s)
    if abs(output_s - source_s) > allowed:
        return (
            f"duration {output_s:.2f} s differs from the source's {source_s:.2f} s "
            f"by more than {allowed:.2f} s"
        )
    return ""


def decode_check(ffmpeg: str, path: Path, mode: str, duration_s: float | None) -> None:
    """Decode the output's video (all frames or keyframes only); any error fails it."""
    if mode == "off":
        return
    skip = ["-skip_frame", "nokey"] if mode == "keyframes" else []
    argv = [
        ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-xerror",
        *skip, "-i", str(path), "-map", "0:v:0", "-f", "null", "-",
    ]  # fmt: skip
    timeout = 60.0 + DECODE_TIMEOUT_PER_S * (duration_s or 0.0)
    try:
        result = process.run(argv, timeout=timeout)
    except ProcessError as e:
        raise VerifyError(f"{path}: decode check failed: {e}", path=path) from e
    if result.returncode != 0 or result.stderr_tail.strip():
        detail = process.last_line(result.stderr_tail)
        raise VerifyError(f"{path}: decode check failed: {detail}", path=path)


def verify_output(
    output: Path,
    source: MediaInfo,
    cfg: VerifySettings,
    *,
    ffprobe: str = "ffprobe",
    ffmpeg: str = "ffmpeg",
) -> MediaInfo:
    """Check an encoded file against its source; raise VerifyError naming what is wrong."""
    if not output.is_file():
        raise VerifyError(f"{output}: no output file was produced", path=output)
    if output.stat().st_size == 0:
        raise VerifyError(f"{output}: output is empty (0 bytes)", path=output)
    boxes = top_level_boxes(output)
    if "moov" not in boxes:
        raise VerifyError(f"{output}: not a complete MP4 (no moov box)", path=output)
    if "mdat" in boxes and boxes.index("moov") > boxes.index("mdat"):
        raise VerifyError(f"{output}: moov is after mdat (not faststart)", path=output)
    try:
        data = run_ffprobe(ffprobe, output)
    except SourceError as e:
        raise VerifyError(f"{output}: output is unreadable: {e}", path=output) from e
    info = parse_media(output, data)
    problems = []
    if info.video is None:
        problems.append("no video stream")
    elif info.video.codec != "h264":
        problems.append(f"video is {info.video.codec}, not h264")
    elif not info.video_packets:
        problems.append("the video stream has no frames")
    if len(info.audio_codecs) != len(source.audio_codecs):
        problems.append(
            f"{len(info.audio_codecs)} audio stream(s), the source has {len(source.audio_codecs)}"
        )
    duration_problem = check_duration(info.duration_s, source.duration_s, cfg)
    if duration_problem:
        problems.append(duration_problem)
    if problems:
        raise VerifyError(f"{output}: verification failed: {'; '.join(problems)}", path=output)
    decode_check(ffmpeg, output, cfg.decode, info.duration_s)
    return info
