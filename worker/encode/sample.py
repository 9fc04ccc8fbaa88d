"""Generated broadcast-like recordings: 1080i MPEG-2 + AAC in an MPEG-TS, made by ffmpeg.

No clearly licensed ISDB capture is public, so the demo, the backend probe, the tests and
the benchmarks encode clips that ffmpeg synthesises in the same shape (1440x1080
interlaced top-field-first, SAR 4:3, AAC 48 kHz stereo, service 1024).
"""

from __future__ import annotations

from pathlib import Path

from worker import process
from worker.errors import ProcessError

SERVICE_ID = 1024


def sample_argv(
    output: Path,
    *,
    seconds: float = 10.0,
    width: int = 1440,
    height: int = 1080,
    interlaced: bool = True,
    aspect: str = "16:9",
    audio_seconds: float | None = None,
    service_id: int = SERVICE_ID,
    bframes: int = 0,
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    """The ffmpeg argv that writes a synthetic broadcast TS to ``output``: ``aspect`` is
    the display aspect (the pixel shape follows from the size), ``audio_seconds`` an
    audio stream shorter than the video (a recording whose sound dropped out), ``bframes``
    B-frames between references in 15-frame GOPs (broadcast MPEG-2 is IBBP)."""
    # 59.94 fields per second, woven into 29.97 interlaced frames by the interlace filter.
    rate = "60000/1001" if interlaced else "30000/1001"
    video_filter = ["-vf", "interlace=scan=tff"] if interlaced else []
    flags = ["-flags", "+ilme+ildct", "-top", "1"] if interlaced else []
    if bframes:
        flags += ["-bf", str(bframes), "-g", "15"]
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={rate}",
        "-f", "lavfi", "-t", f"{audio_seconds or seconds:g}",
        "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", f"{seconds:g}",
        *video_filter,
        "-c:v", "mpeg2video", *flags, "-b:v", "6M", "-maxrate", "8M", "-bufsize", "4M",
        "-aspect", aspect,
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "mpegts", "-mpegts_original_network_id", "32736",
        "-mpegts_transport_stream_id", "32736", "-mpegts_service_id", str(service_id),
        str(output),
    ]  # fmt: skip


def make_sample(output: Path, *, seconds: float = 10.0, **kwargs: object) -> Path:
    """Write a synthetic broadcast TS and return its path (atomically: temp, then rename)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temp = output.with_name(f".{output.name}.tmp")
    argv = sample_argv(temp, seconds=seconds, **kwargs)  # type: ignore[arg-type]
    try:
        process.run(argv, timeout=120 + seconds * 20, check=True)
    except ProcessError:
        temp.unlink(missing_ok=True)
        raise
    temp.replace(output)
    return output
