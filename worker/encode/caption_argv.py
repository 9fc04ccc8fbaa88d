"""The caption part of an ffmpeg argv: ARIB captions to mov_text, and the sidecar output.

It is applied to the argv a backend built (worker/encode/argv.py), so it is the same for
x264, qsv and vaapi: ``-fix_sub_duration`` before the input (an ARIB caption has no end
time of its own; it lasts until the next one, as EPGStation's own recipe does), the
caption streams mapped after the video and audio and encoded as ``mov_text``, and a
second output for the sidecar. Without captions to keep, the MP4 gets ``-sn``.
"""

from __future__ import annotations

from worker.captions import CaptionPlan, CaptionStatus

SIDECAR_CODECS = {"srt": "srt", "ass": "ass"}


def caption_output_options(plan: CaptionPlan) -> list[str]:
    """Output options for the MP4: the caption maps as mov_text, or ``-sn``."""
    if plan.status is not CaptionStatus.KEPT:
        return ["-sn"]
    maps = [arg for index in plan.streams for arg in ("-map", f"0:{index}")]
    return [*maps, "-c:s", "mov_text"]


def sidecar_output(plan: CaptionPlan) -> list[str]:
    """The sidecar as a second ffmpeg output (the first caption stream), or nothing."""
    if plan.status is not CaptionStatus.KEPT or plan.sidecar_format is None:
        return []
    if plan.sidecar_temp is None:
        raise ValueError("a sidecar needs a temporary path to write to")
    fmt = plan.sidecar_format
    return ["-map", f"0:{plan.streams[0]}", "-c:s", SIDECAR_CODECS[fmt], "-f", fmt,
            str(plan.sidecar_temp)]  # fmt: skip


def with_captions(argv: list[str], plan: CaptionPlan) -> list[str]:
    """A backend's argv (one input, the MP4 last) with the plan's captions applied."""
    if "-i" not in argv:
        raise ValueError("an ffmpeg argv without an input")
    body, output = [a for a in argv[:-1] if a != "-sn"], argv[-1]
    if plan.status is CaptionStatus.KEPT:
        at = body.index("-i")
        body = [*body[:at], "-fix_sub_duration", *body[at:]]
    return [*body, *caption_output_options(plan), output, *sidecar_output(plan)]
