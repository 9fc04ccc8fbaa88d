"""Recordings for tests, made by real ffmpeg: broadcast-like clips and broken ones."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from worker.encode.sample import make_sample
from worker.outputs.names import is_temp_name


@dataclass(frozen=True)
class Clips:
    """Generated sources shared by a test session (copy before handing one to a job)."""

    isdb_1080i: Path  # 2 s 1440x1080i MPEG-2 + AAC, service 1024
    long_1080i: Path  # 8 s, long enough to cancel or kill mid-encode
    two_services: Path  # services 1024 and 1032, each with video and audio
    truncated: Path  # cut inside a TS packet, as a recording cut off mid-write
    text_ts: Path  # a text file named .ts
    zero_ts: Path  # 0 bytes


def two_service_ts(path: Path) -> Path:
    """A TS carrying two services, to prove only the main programme is kept."""
    argv = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=720x480:rate=60000/1001",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", "2", "-vf", "interlace=scan=tff",
        "-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a",
        "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "3M",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-program", "program_num=1024:title=main:st=0:st=1",
        "-program", "program_num=1032:title=sub:st=2:st=3",
        "-f", "mpegts", str(path),
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=120)
    return path


def telecined_ts(path: Path, seconds: float = 3.0) -> Path:
    """23.976p film put through 3:2 pulldown into 29.97i, as anime and films are broadcast:
    ffmpeg's telecine filter, then interlaced MPEG-2 in a TS."""
    argv = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=720x480:rate=24000/1001",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", f"{seconds:g}", "-vf", "telecine=first_field=top:pattern=23",
        "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "4M",
        "-aspect", "4:3", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "mpegts", "-mpegts_service_id", "1024", str(path),
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=120)
    return path


def make_clips(directory: Path) -> Clips:
    """Generate every test source once."""
    directory.mkdir(parents=True, exist_ok=True)
    isdb = make_sample(directory / "isdb_1080i.ts", seconds=2)
    long = make_sample(directory / "long_1080i.ts", seconds=8)
    truncated = directory / "truncated.ts"
    data = isdb.read_bytes()
    truncated.write_bytes(data[: len(data) // 3 + 77])
    text = directory / "notes.ts"
    text.write_text("これは録画ではありません\n", encoding="utf-8")
    zero = directory / "zero.ts"
    zero.write_bytes(b"")
    return Clips(
        isdb_1080i=isdb,
        long_1080i=long,
        two_services=two_service_ts(directory / "two_services.ts"),
        truncated=truncated,
        text_ts=text,
        zero_ts=zero,
    )


def sha256(path: Path) -> str:
    """The file's digest, to prove a source was left untouched."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[Path]:
    """Temporary encode files left in a directory (there must be none)."""
    return sorted(p for p in directory.iterdir() if is_temp_name(p.name))
