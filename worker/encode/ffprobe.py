"""What a media file holds, read with ffprobe: format, duration, programmes and streams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from worker import process
from worker.captions import ARIB_CODEC
from worker.errors import ProcessError, SourceError
from worker.outputs.identity import require_regular

FFPROBE_TIMEOUT = 120.0
TS_PACKET = 188
INTERLACED_ORDERS = {"tt", "bb", "tb", "bt"}


class VideoInfo(BaseModel):
    """The video stream kamado encodes."""

    model_config = ConfigDict(frozen=True)

    index: int
    codec: str
    width: int
    height: int
    sar: tuple[int, int] = (1, 1)
    field_order: str = "unknown"

    @property
    def interlaced(self) -> bool:
        """True when ffprobe saw interlaced field order (1080i broadcasts)."""
        return self.field_order in INTERLACED_ORDERS

    @property
    def display_width(self) -> float:
        """The width in square pixels (1440 × 4:3 = 1920 for ISDB 1080i)."""
        return self.width * self.sar[0] / self.sar[1]

    @property
    def display_aspect(self) -> float:
        """Display width over height (4:3 SD is 1.333 whatever its pixel shape)."""
        return self.display_width / self.height if self.height else 0.0


class StreamTime(BaseModel):
    """How long one video or audio stream of a file lasts."""

    model_config = ConfigDict(frozen=True)

    index: int
    kind: Literal["video", "audio"]
    codec: str
    duration_s: float | None
    start_s: float | None = None

    @property
    def end_s(self) -> float | None:
        """When the stream ends on the file's clock (its start plus its duration)."""
        if self.duration_s is None:
            return None
        return (self.start_s or 0.0) + self.duration_s

    @property
    def label(self) -> str:
        """The stream as a person names it: "audio stream #1 (aac)"."""
        return f"{self.kind} stream #{self.index} ({self.codec})"


class AudioStream(BaseModel):
    """One audio stream of the programme, as the PMT and the first frames describe it."""

    model_config = ConfigDict(frozen=True)

    index: int
    codec: str
    channels: int = 0
    # From the PMT's ISO 639 descriptor: ffmpeg reports a two-language one (dual mono,
    # "jpn,eng") as one comma-separated tag.
    languages: tuple[str, ...] = ()
    # Found by reading the AAC stream itself (worker/encode/aac_scan.py), None until then.
    dual_mono: bool | None = None
    max_channels: int | None = None


class MediaInfo(BaseModel):
    """One file as ffprobe read it."""

    model_config = ConfigDict(frozen=True)

    path: str
    format_name: str
    duration_s: float | None
    size_bytes: int
    video: VideoInfo | None
    audio_codecs: list[str]
    program_id: int | None = None
    video_packets: int | None = None
    streams: list[StreamTime] = []
    # The programme's ARIB caption streams (ffmpeg indexes), see worker/captions.py.
    captions: list[int] = []
    audio: list[AudioStream] = []

    @property
    def programme_duration_s(self) -> float | None:
        """The kept programme's length: its longest stream, else the file's duration."""
        known = [s.duration_s for s in self.streams if s.duration_s is not None]
        return max(known) if known else self.duration_s

    @property
    def is_mpegts(self) -> bool:
        """True for broadcast transport streams (.ts, .m2ts)."""
        return "mpegts" in self.format_name.split(",")


def _ratio(text: str | None) -> tuple[int, int]:
    if not text or ":" not in text:
        return (1, 1)
    num, den = text.split(":", 1)
    try:
        n, d = int(num), int(den)
    except ValueError:
        return (1, 1)
    return (n, d) if n > 0 and d > 0 else (1, 1)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _languages(tags: Any) -> tuple[str, ...]:
    raw = str(tags.get("language", "")) if isinstance(tags, dict) else ""
    codes = [c.strip().lower() for c in raw.split(",")]
    return tuple(c for c in codes if len(c) == 3 and c.isalpha() and c != "und")


def _start(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_ffprobe(ffprobe: str, path: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """ffprobe's JSON for a file; a file ffprobe cannot read is a SourceError with its reason."""
    data, _ = run_ffprobe_with_log(ffprobe, path, extra)
    return data


def run_ffprobe_with_log(
    ffprobe: str, path: Path, extra: list[str] | None = None, *, timeout: float = FFPROBE_TIMEOUT
) -> tuple[dict[str, Any], str]:
    """ffprobe's JSON for a file and the errors it logged while reading it (may be empty)."""
    argv = [
        ffprobe, "-v", "error", "-hide_banner",
        "-show_format", "-show_streams", "-show_programs",
        *(extra or []),
        "-of", "json", "--", str(path),
    ]  # fmt: skip
    try:
        result = process.run(argv, timeout=timeout)
    except ProcessError as e:
        raise SourceError(f"{path}: ffprobe cannot read it: {e}", path=path) from e
    if result.returncode != 0:
        reason = process.last_line(result.stderr_tail)
        reason = reason.removeprefix(f"{path}: ")
        raise SourceError(f"{path}: not a recording ffprobe can read ({reason})", path=path)
    try:
        data: dict[str, Any] = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as e:
        raise SourceError(f"{path}: ffprobe printed unreadable output", path=path) from e
    return data, result.stderr_tail


def _pick_program(data: dict[str, Any], wanted: int | None) -> tuple[int | None, set[int]]:
    """The programme to keep (the first with video, or ``wanted``) and its stream indexes."""
    programs = [p for p in data.get("programs", []) if p.get("streams")]
    if not programs:
        return None, {int(s["index"]) for s in data.get("streams", [])}
    for program in programs:
        pid = int(program["program_id"])
        kinds = {s.get("codec_type") for s in program["streams"]}
        if (wanted is None and "video" in kinds) or pid == wanted:
            return pid, {int(s["index"]) for s in program["streams"]}
    if wanted is not None:
        ids = ", ".join(str(p["program_id"]) for p in programs)
        raise SourceError(f"programme {wanted} is not in the file (it has {ids})")
    first = programs[0]
    return int(first["program_id"]), {int(s["index"]) for s in first["streams"]}


def parse_media(path: Path, data: dict[str, Any], service_id: int | None = None) -> MediaInfo:
    """Turn ffprobe JSON into MediaInfo for one programme."""
    fmt = data.get("format", {})
    program_id, indexes = _pick_program(data, service_id)
    streams = [s for s in data.get("streams", []) if int(s.get("index", -1)) in indexes]
    video = None
    for s in streams:
        if s.get("codec_type") == "video" and s.get("disposition", {}).get("attached_pic") != 1:
            video = VideoInfo(
                index=int(s["index"]),
                codec=str(s.get("codec_name", "unknown")),
                width=int(s.get("width") or 0),
                height=int(s.get("height") or 0),
                sar=_ratio(s.get("sample_aspect_ratio")),
                field_order=str(s.get("field_order", "unknown")),
            )
            break
    audio = [str(s.get("codec_name", "unknown")) for s in streams if s.get("codec_type") == "audio"]
    times = [
        StreamTime(
            index=int(s["index"]),
            kind=s["codec_type"],
            codec=str(s.get("codec_name", "unknown")),
            duration_s=_float(s.get("duration")),
            start_s=_start(s.get("start_time")),
        )
        for s in streams
        if s.get("codec_type") in ("video", "audio")
        and s.get("disposition", {}).get("attached_pic") != 1
    ]
    audio_streams = [
        AudioStream(
            index=int(s["index"]),
            codec=str(s.get("codec_name", "unknown")),
            channels=int(s.get("channels") or 0),
            languages=_languages(s.get("tags")),
        )
        for s in streams
        if s.get("codec_type") == "audio"
    ]
    packets = None
    if video is not None:
        raw: dict[str, Any] = next((s for s in streams if int(s["index"]) == video.index), {})
        # MP4 keeps its sample count in the sample table: no need to read the whole file.
        for key in ("nb_read_packets", "nb_frames"):
            if str(raw.get(key, "")).isdigit():
                packets = int(raw[key])
                break
    return MediaInfo(
        path=str(path),
        format_name=str(fmt.get("format_name", "")),
        duration_s=_float(fmt.get("duration")),
        size_bytes=int(fmt.get("size") or path.stat().st_size),
        video=video,
        audio_codecs=audio,
        program_id=program_id,
        video_packets=packets,
        streams=times,
        captions=[int(s["index"]) for s in streams if s.get("codec_name") == ARIB_CODEC],
        audio=audio_streams,
    )


# How much of a TS's end is read to find where its streams really end: more than the
# longest gap between one stream's packets in a broadcast (audio runs ahead of video).
TAIL_WINDOW_S = 5.0


def with_measured_ends(ffprobe: str, info: MediaInfo) -> MediaInfo:
    """``info`` with each TS stream's end measured from its last packets.

    ffprobe only estimates a transport stream's per-stream lengths, from a window at the
    file's end; a recording that stopped at an arbitrary packet has streams whose last
    packets sit earlier than the window's, and their estimate is a few tenths of a second
    short. The sync check compares ends, so it needs the real ones. Other containers keep
    exact lengths and come back unchanged, as does a file the tail cannot be read of.
    """
    path = Path(info.path)
    ends = [s.end_s for s in info.streams if s.end_s is not None]
    if not info.is_mpegts or not ends or not path.is_file():
        return info
    start = max(0.0, max(ends) - TAIL_WINDOW_S)
    argv = [
        ffprobe, "-v", "error", "-read_intervals", f"{start:.3f}%",
        "-show_entries", "packet=stream_index,pts_time,duration_time", "-of", "csv=p=0",
        "--", str(path),
    ]  # fmt: skip
    try:
        result = process.run(argv, timeout=FFPROBE_TIMEOUT)
    except ProcessError:
        return info
    if result.returncode != 0:
        return info
    last: dict[int, float] = {}
    for line in (result.stdout or "").splitlines():
        fields = line.split(",")
        if len(fields) < 3:
            continue
        try:
            index, pts, duration = int(fields[0]), float(fields[1]), float(fields[2] or 0)
        except ValueError:  # N/A: a packet without a timestamp
            continue
        last[index] = max(last.get(index, pts + duration), pts + duration)
    streams = [
        s.model_copy(update={"duration_s": last[s.index] - s.start_s})
        if s.index in last and s.start_s is not None and last[s.index] > s.start_s
        else s
        for s in info.streams
    ]
    return info.model_copy(update={"streams": streams})


def ts_tail_cut(path: Path) -> int:
    """Bytes of an incomplete last TS packet (0 when the file ends on a packet boundary).

    The alignment comes from the first offset where three sync bytes line up, so a
    recording that joined mid-packet at its start is not mistaken for a cut one.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(TS_PACKET * 4)
    for offset in range(min(TS_PACKET, len(head))):
        marks = head[offset::TS_PACKET][:3]
        if len(marks) == 3 and all(b == 0x47 for b in marks):
            return (size - offset) % TS_PACKET
    return 0


def check_readable(path: Path) -> None:
    """Fail early and clearly when a source is missing, empty, unreadable or not a regular
    file (a directory, FIFO or device is refused from its stat, never opened)."""
    require_regular(str(path))
    try:
        with path.open("rb") as fh:
            first = fh.read(1)
    except OSError as e:
        raise SourceError(f"{path}: cannot read: {e.strerror or e}", path=path) from e
    if not first:
        raise SourceError(f"{path}: empty file (0 bytes)", path=path)


def read_media(
    ffprobe: str, path: Path, *, service_id: int | None = None, reject_cut_ts: bool = True
) -> MediaInfo:
    """A recording as ffprobe reads it; what can never encode is a SourceError with the reason."""
    check_readable(path)
    info = parse_media(path, run_ffprobe(ffprobe, path), service_id)
    if info.video is None:
        raise SourceError(f"{path}: has no video stream", path=path)
    if info.video.width <= 0 or info.video.height <= 0:
        raise SourceError(f"{path}: the video stream has no picture size", path=path)
    if info.is_mpegts and reject_cut_ts:
        cut = ts_tail_cut(path)
        if cut:
            raise SourceError(
                f"{path}: truncated MPEG-TS: the file ends inside a packet ({cut} of "
                f"{TS_PACKET} bytes); the recording was cut off or is still being written",
                path=path,
            )
    return info
