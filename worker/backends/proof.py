"""Proof that a backend's output is right: broadcast-shaped samples, checked as a job's are.

Exit 0 and a file prove nothing (issue #20 §7). Each backend encodes short samples shaped
like real broadcasts (1440x1080i SAR 4:3 with B-frames, 720x480i 4:3, 1920x1080i) with
every configured profile it serves, and each output must pass the job's own verification
(worker/encode/verify.py: H.264, audio, durations, display aspect, faststart, a full decode) plus
the size the argv asked for, progressive frames and the frame count deinterlacing gives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from worker.encode.argv import inverse_telecine, output_size
from worker.encode.ffprobe import MediaInfo, read_media
from worker.encode.sample import make_sample
from worker.encode.verify import verify_output
from worker.errors import KamadoError
from worker.profiles import Backend, Profile, all_profiles
from worker.settings.model import Settings

# Interlaced samples are 29.97 frames (59.94 fields) per second; the deinterlacers send
# one frame per frame, IVTC four in five.
FRAME_RATE = 30000 / 1001


@dataclass(frozen=True)
class Shape:
    """One broadcast-like sample: its size, display aspect and GOP structure."""

    name: str
    width: int
    height: int
    aspect: str
    bframes: int


SHAPES: tuple[Shape, ...] = (
    Shape("1440x1080i", 1440, 1080, "16:9", 2),  # ISDB HD: anamorphic, IBBP
    Shape("720x480i", 720, 480, "4:3", 2),  # ISDB SD
    Shape("1920x1080i", 1920, 1080, "16:9", 0),  # BS / square-pixel HD
)
# Not a broadcast: for guests too slow to encode HD in time (an emulated CPU), chosen
# with [guest] probe_shapes. Interlaced 4:3 with B-frames, so the same checks apply.
SMALL = Shape("320x240i", 320, 240, "4:3", 2)
SHAPE_NAMES: tuple[str, ...] = (*(s.name for s in SHAPES), SMALL.name)


def shapes(names: list[str]) -> list[Shape]:
    """The shapes named (config's [guest] probe_shapes), in that order."""
    known = {s.name: s for s in (*SHAPES, SMALL)}
    return [known[name] for name in names]


class SampleReport(BaseModel):
    """One sample's encode through one backend and profile: passed, or why not."""

    model_config = ConfigDict(frozen=True)

    shape: str
    profiles: list[str]
    passed: bool
    reason: str = ""
    kind: str = ""
    seconds: float | None = None
    frames: int | None = None


def make_samples(settings: Settings, workdir: Path) -> dict[str, Path]:
    """Write every shape's sample under ``workdir``; name → path."""
    seconds = settings.guest.probe_seconds
    return {
        shape.name: make_sample(
            workdir / f"sample-{shape.name}.ts",
            seconds=seconds,
            width=shape.width,
            height=shape.height,
            aspect=shape.aspect,
            bframes=shape.bframes,
            ffmpeg=settings.encode.ffmpeg,
        )
        for shape in shapes(settings.guest.probe_shapes)
    }


def _fingerprint(profile: Profile) -> str:
    """What in a profile changes the video argv (names and descriptions do not)."""
    data = profile.model_dump_json(exclude={"description", "backends", "service_id"})
    return hashlib.sha256(data.encode()).hexdigest()


def profiles_for(backend: Backend, settings: Settings) -> list[tuple[list[str], Profile]]:
    """The configured profiles (built-in and the user's) that accept ``backend``, with the
    ones that build the same argv grouped so each distinct argv is encoded once."""
    groups: dict[str, tuple[list[str], Profile]] = {}
    for name, profile in sorted(all_profiles(settings.profiles).items()):
        if backend not in profile.backends:
            continue
        names, _ = groups.setdefault(_fingerprint(profile), ([], profile))
        names.append(name)
    return list(groups.values())


def expected_frames(profile: Profile, source: MediaInfo) -> int:
    """Frames the output should hold: one per source frame, four in five under IVTC."""
    seconds = source.duration_s or 0.0
    frames = seconds * FRAME_RATE
    return round(frames * 4 / 5 if inverse_telecine(profile) else frames)


def check_sample(output: Path, source: MediaInfo, profile: Profile, settings: Settings) -> str:
    """'' when the output is what a job must deliver, else every reason it is not."""
    cfg = settings.verify.model_copy(update={"decode": "full"})
    try:
        info = verify_output(output, source, cfg, ffprobe=settings.encode.ffprobe)
    except KamadoError as e:
        return str(e).removeprefix(f"{output}: ")
    video, src = info.video, source.video
    if video is None or src is None:  # verify_output refuses a file without video
        return "no video stream"
    problems = []
    want = output_size(profile, source) or (src.width, src.height)
    if (video.width, video.height) != want:
        problems.append(f"size {video.width}x{video.height}, the argv asked {want[0]}x{want[1]}")
    if video.field_order not in ("progressive", "unknown"):
        problems.append(f"field order {video.field_order}: the output is not progressive")
    frames, expected = info.video_packets or 0, expected_frames(profile, source)
    if abs(frames - expected) > max(3, expected // 10):
        problems.append(f"{frames} frames, {expected} expected from the source")
    return "; ".join(problems)


def sample_info(settings: Settings, sample: Path) -> MediaInfo:
    """The sample probed the way a job probes its source."""
    return read_media(settings.encode.ffprobe, sample)
