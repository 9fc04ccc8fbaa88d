"""ARIB captions: whether this ffmpeg can decode them, and what a job does with them.

ISDB broadcasts carry captions as an ARIB STD-B24 stream (ffmpeg's codec
``arib_caption``). Decoding them needs a decoder ffmpeg has only when built with
libaribb24 or libaribcaption (Debian 12: ``libavcodec-extra``). With one, the captions
go into the MP4 as ``mov_text`` and, when the profile asks, into a sidecar ``.srt`` or
``.ass`` beside it; without one, the job's result says they were dropped and why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from worker import process
from worker.errors import KamadoError

if TYPE_CHECKING:
    from worker.profiles import Captions

__all__ = ["CaptionSupport", "support_words"]

ARIB_CODEC = "arib_caption"
SIDECAR_FORMATS = ("srt", "ass")
DECODER_TIMEOUT = 30.0


class CaptionSupport(BaseModel):
    """Whether an ffmpeg build decodes ARIB captions: the decoder's name, or why not."""

    model_config = ConfigDict(frozen=True)

    decoder: str | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        """True when ffmpeg has an ARIB caption decoder."""
        return self.decoder is not None

    @property
    def summary(self) -> str:
        """For tables: the decoder's name, or "no decoder"."""
        return self.decoder or "no decoder"


def support_words(support: CaptionSupport | None) -> str:
    """Whether captions are kept here, and why not: "kept as mov_text (decoder ...)"."""
    if support is None:
        return "not probed"
    if support.available:
        return f"kept as mov_text (decoder {support.decoder})"
    return f"dropped ({support.reason})"


def describe_support(support: CaptionSupport | None) -> str:
    """One line for people: "ARIB captions: " and :func:`support_words`."""
    return f"ARIB captions: {support_words(support)}"


def arib_decoders(listing: str) -> list[str]:
    """The decoders in ``ffmpeg -decoders`` output that decode ``arib_caption`` (a decoder
    named after the codec, or one whose description ends ``(codec arib_caption)``)."""
    found = []
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) < 2 or len(parts[0]) != 6 or not parts[0].startswith("S"):
            continue
        if parts[1] == ARIB_CODEC or line.rstrip().endswith(f"(codec {ARIB_CODEC})"):
            found.append(parts[1])
    return found


# Decoders found, per ffmpeg binary (its path and stat) and library path: nearly every
# recording has captions, so without this each job would start ffmpeg once more (~0.1 s).
# Only a found decoder is kept: a build without one is asked again, so installing
# libavcodec-extra under a running worker takes effect at its next job.
_found: dict[tuple[str, ...], str] = {}


def binary_key(ffmpeg: str) -> tuple[str, ...] | None:
    """What identifies an ffmpeg build here: its resolved path, inode and mtime, and the
    library path it loads from (None when it cannot be found)."""
    path = shutil.which(ffmpeg)
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (path, str(st.st_ino), str(st.st_mtime_ns), os.environ.get("LD_LIBRARY_PATH", ""))


def caption_support(ffmpeg: str) -> CaptionSupport:
    """Ask ffmpeg for its decoders; a build without an ARIB caption decoder says what
    would bring one."""
    key = binary_key(ffmpeg)
    if key is not None and key in _found:
        return CaptionSupport(decoder=_found[key])
    try:
        result = process.run([ffmpeg, "-hide_banner", "-decoders"], timeout=DECODER_TIMEOUT)
    except KamadoError as e:
        return CaptionSupport(reason=f"cannot list ffmpeg's decoders: {e}")
    found = arib_decoders(result.stdout)
    if found:
        if key is not None:
            _found[key] = found[0]
        return CaptionSupport(decoder=found[0])
    return CaptionSupport(
        reason="this ffmpeg has no ARIB caption decoder (libaribb24 or libaribcaption; on "
        "Debian and Ubuntu install libavcodec-extra)"
    )


class CaptionStatus(StrEnum):
    """What became of a source's captions."""

    KEPT = "kept"  # in the MP4 as mov_text (and in the sidecar, if one was asked for)
    NONE = "none"  # the source has no ARIB caption stream
    OFF = "off"  # the profile says captions.keep = false
    DROPPED = "dropped"  # the source has captions this ffmpeg cannot decode


class CaptionResult(BaseModel):
    """The captions part of a job's result."""

    model_config = ConfigDict(frozen=True)

    status: CaptionStatus
    streams: int = 0
    reason: str = ""
    sidecar: str | None = None


def caption_line(result: CaptionResult) -> str:
    """A job's captions for people: "captions: kept (sidecar show.srt)", "captions: dropped
    (1 caption stream not kept: ...)"."""
    details = [
        d for d in (result.reason, f"sidecar {result.sidecar}" if result.sidecar else "") if d
    ]
    return f"captions: {result.status.value}" + (f" ({'; '.join(details)})" if details else "")


@dataclass(frozen=True)
class CaptionPlan:
    """What one encode does with captions: the source streams to map (ffmpeg indexes),
    and the sidecar to write beside the MP4 (format and temporary path), if any."""

    status: CaptionStatus
    streams: tuple[int, ...] = ()
    reason: str = ""
    sidecar_format: Literal["srt", "ass"] | None = None
    sidecar_temp: Path | None = None

    def result(self, sidecar: str | None = None) -> CaptionResult:
        """The result to report once the output (and ``sidecar``, its final place) is in place."""
        return CaptionResult(
            status=self.status, streams=len(self.streams), reason=self.reason, sidecar=sidecar
        )


def plan_captions(
    streams: list[int],
    *,
    keep: bool,
    sidecar: Literal["none", "srt", "ass"],
    support: CaptionSupport,
    sidecar_temp: Path | None = None,
) -> CaptionPlan:
    """Decide what an encode does with the source's ARIB caption ``streams``."""
    if not streams:
        return CaptionPlan(CaptionStatus.NONE)
    if not keep:
        return CaptionPlan(CaptionStatus.OFF, reason="the profile has captions.keep = false")
    if not support.available:
        count = f"{len(streams)} caption stream{'s' if len(streams) > 1 else ''}"
        return CaptionPlan(CaptionStatus.DROPPED, reason=f"{count} not kept: {support.reason}")
    wanted = None if sidecar == "none" else sidecar
    if wanted is not None and sidecar_temp is None:
        raise ValueError("a caption sidecar needs the temporary path it is written to")
    return CaptionPlan(
        CaptionStatus.KEPT,
        streams=tuple(streams),
        sidecar_format=wanted,
        sidecar_temp=sidecar_temp if wanted else None,
    )


def plan_for(
    wanted: Captions, streams: list[int], ffmpeg: str, sidecar_to: Callable[[str], Path]
) -> CaptionPlan:
    """The plan for a profile's ``wanted`` captions and a source's caption ``streams``;
    ``sidecar_to`` names the file a sidecar of a format is written to. ffmpeg is asked
    for its decoders only when the source has captions to keep."""
    support = caption_support(ffmpeg) if streams and wanted.keep else CaptionSupport()
    fmt = wanted.sidecar
    return plan_captions(
        streams,
        keep=wanted.keep,
        sidecar=fmt,
        support=support,
        sidecar_temp=sidecar_to(fmt) if fmt != "none" else None,
    )


def sidecar_path(output: str, fmt: str) -> str:
    """The sidecar's place beside an output: ``show.mp4`` → ``show.srt`` (same stem, so the
    output's claim covers it and a renamed ``show (2).mp4`` gets ``show (2).srt``)."""
    stem = output[: -len(".mp4")] if output.lower().endswith(".mp4") else output
    return f"{stem}.{fmt}"
