"""The programme's audio in the output: which tracks, in which order, with which language,
and the ffmpeg options that make them.

Every audio stream of the programme is kept, in the PMT's order, tagged with the language
of its ISO 639 descriptor. A dual-mono stream (two languages in one AAC stream) is, with
``audio.dual_mono = "split"``, two mono tracks: the main (left) side first, tagged with the
descriptor's first language (else ``jpn``), then the sub side (else ``eng``). Every
encoded track goes through ``aresample=async=1``, which pads or trims where the decoded
audio's timestamps jump (a layout switch, a damaged packet), so audio stays with the video;
``-ac`` fixes one output layout however often the source's changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from worker.encode.aac_scan import scan_audio
from worker.encode.ffprobe import AudioStream, MediaInfo
from worker.profiles import Audio

SPLIT_LANGUAGES = ("jpn", "eng")
# Pads or trims the decoded audio where its timestamps jump by more than 0.1 s.
KEEP_IN_SYNC = "aresample=async=1"
SCAN_SECONDS_PER_S = 0.25  # time allowed to read a stream, per second of the recording

Side = Literal["all", "main", "sub"]


@dataclass(frozen=True)
class AudioTrack:
    """One audio track of the output and where it comes from."""

    source: int  # the source stream's index
    side: Side  # all of it, or one side of a dual-mono stream
    language: str | None
    channels: int | None  # None: copied as it is

    @property
    def label(self) -> str:
        """The filter-graph label of a split side."""
        return f"dm{self.source}{self.side}"


def is_dual_mono(stream: AudioStream) -> bool:
    """True when the stream's frames carry two mono channels, or (unread) when its
    descriptor names two languages."""
    if stream.dual_mono is not None:
        return stream.dual_mono
    return len(stream.languages) == 2


def _channels(audio: Audio, stream: AudioStream) -> int:
    if audio.channels != "source":
        return audio.channels
    return max(stream.max_channels or 0, stream.channels, 1)


def _language(audio: Audio, stream: AudioStream) -> str | None:
    if audio.dual_mono == "sub" and len(stream.languages) > 1:
        return stream.languages[1]
    return stream.languages[0] if stream.languages else None


def plan_audio(audio: Audio, info: MediaInfo) -> list[AudioTrack]:
    """The output's audio tracks, in order: one per source stream, two per split one."""
    tracks: list[AudioTrack] = []
    for stream in info.audio:
        if audio.codec == "copy":
            tracks.append(AudioTrack(stream.index, "all", _language(audio, stream), None))
        elif audio.dual_mono == "split" and stream.codec == "aac" and is_dual_mono(stream):
            named = stream.languages + SPLIT_LANGUAGES[len(stream.languages) :]
            tracks.append(AudioTrack(stream.index, "main", named[0], 1))
            tracks.append(AudioTrack(stream.index, "sub", named[1], 1))
        else:
            tracks.append(
                AudioTrack(stream.index, "all", _language(audio, stream), _channels(audio, stream))
            )
    return tracks


def decoder_mode(audio: Audio) -> str:
    """The AAC decoder's ``-dual_mono_mode``: a split needs both sides decoded."""
    return "both" if audio.dual_mono == "split" else audio.dual_mono


def _bitrate(audio: Audio, channels: int) -> str:
    per_pair = int(audio.bitrate[:-1])
    return f"{max(32, per_pair * channels // 2)}k"


def audio_args(audio: Audio, tracks: list[AudioTrack]) -> list[str]:
    """The filter graph, maps, encoders and language tags of the output's audio tracks."""
    split = sorted({t.source for t in tracks if t.side != "all"})
    graph = [
        f"[0:{index}]{KEEP_IN_SYNC},channelsplit=channel_layout=stereo[dm{index}main][dm{index}sub]"
        for index in split
    ]
    args = ["-filter_complex", ";".join(graph)] if graph else []
    for track in tracks:
        args += ["-map", f"[{track.label}]" if track.side != "all" else f"0:{track.source}"]
    for n, track in enumerate(tracks):
        if track.channels is None:
            args += [f"-c:a:{n}", "copy"]
        else:
            args += [f"-c:a:{n}", "aac", f"-b:a:{n}", _bitrate(audio, track.channels),
                     f"-ac:a:{n}", str(track.channels)]  # fmt: skip
            if track.side == "all":
                args += [f"-filter:a:{n}", KEEP_IN_SYNC]
        args += [f"-metadata:s:a:{n}", f"language={track.language or 'und'}"]
    return args


def streams_to_scan(audio: Audio, info: MediaInfo) -> list[int]:
    """The AAC streams whose frames must be read before encoding: all of them when the
    profile keeps the source's layout or splits dual mono, else none."""
    if audio.codec == "copy" or (audio.channels != "source" and audio.dual_mono != "split"):
        return []
    return [s.index for s in info.audio if s.codec == "aac" and s.max_channels is None]


def read_layouts(ffmpeg: str, source: Path, info: MediaInfo, audio: Audio) -> MediaInfo:
    """``info`` with each AAC stream's layouts and dual mono read from its frames, where
    the profile needs them (one read of the source per stream)."""
    indexes = streams_to_scan(audio, info)
    if not indexes:
        return info
    timeout = 120.0 + SCAN_SECONDS_PER_S * (info.duration_s or 0.0)
    found = scan_audio(ffmpeg, source, indexes, timeout=timeout)
    streams = []
    for stream in info.audio:
        layouts = found.get(stream.index)
        if layouts is not None and layouts.frames:
            stream = stream.model_copy(
                update={"dual_mono": layouts.dual_mono, "max_channels": layouts.max_channels}
            )
        streams.append(stream)
    return info.model_copy(update={"audio": streams})
