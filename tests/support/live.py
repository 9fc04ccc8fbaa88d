"""A recording written in real time, as a tuner writes it: real ffmpeg with ``-re``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from worker.jobs import Recording


def recorder_argv(path: Path, seconds: float, *, size: str = "720x480") -> list[str]:
    """ffmpeg writing ``seconds`` of interlaced MPEG-2 + AAC into a TS at real time."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30000/1001",
        "-re", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", f"{seconds:g}", "-vf", "interlace=scan=tff",
        "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "2M",
        "-aspect", "4:3", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "mpegts", "-mpegts_service_id", "1024", "-flush_packets", "1", str(path),
    ]  # fmt: skip


@contextmanager
def recording_in_real_time(path: Path, seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    """Start writing the recording; the block gets the writer (``wait()`` for its end)."""
    proc = subprocess.Popen(recorder_argv(path, seconds), stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def programme(seconds: float, *, start: datetime | None = None) -> Recording:
    """What EPGStation tells a hook about a programme of ``seconds`` starting now."""
    begin = start or datetime.now(UTC)
    return Recording(
        recorder="epgstation",
        recorded_id="7",
        title="live test",
        start=begin,
        end=begin + timedelta(seconds=seconds),
    )
