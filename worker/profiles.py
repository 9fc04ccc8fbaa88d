"""Encode profiles: what an output should be, and which backends may make it.

A profile states an intent (H.264, quality, deinterlace, size, audio) and the backends it
accepts in order of preference. ``worker/encode/argv.py`` turns a profile, a backend and a
probed source into an ffmpeg argv.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.errors import BackendUnavailable, BadInputError

__all__ = [
    "BUILTIN_PROFILES",
    "QUEUE_CPU",
    "QUEUE_GPU",
    "Audio",
    "Backend",
    "Captions",
    "Profile",
    "all_profiles",
    "choose_backend",
    "get_profile",
]

QUEUE_GPU = "encode.gpu"
QUEUE_CPU = "encode.cpu"


class Backend(StrEnum):
    """An ffmpeg encode path."""

    QSV = "qsv"
    VAAPI = "vaapi"
    X264 = "x264"

    @property
    def hardware(self) -> bool:
        """True for the Intel GPU paths."""
        return self is not Backend.X264


class Audio(BaseModel):
    """What happens to the programme's audio streams (all of them are kept, in order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codec: Literal["aac", "copy"] = "aac"
    bitrate: str = Field(
        default="192k",
        pattern=r"^[1-9][0-9]{1,3}k$",
        description="for two channels: a mono track gets half, 5.1 three times as much",
    )
    channels: Annotated[int, Field(ge=1, le=8)] | Literal["source"] = Field(
        default=2,
        description='output channels; "source" keeps the widest layout the stream carries',
    )
    # ARIB dual mono: main (left) is the safe default, harmless on ordinary stereo;
    # split makes two mono tracks, one per language.
    dual_mono: Literal["main", "sub", "both", "auto", "split"] = "main"

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> Any:
        # One reason, not one per member of the union.
        if value == "source" or (type(value) is int and 1 <= value <= 8):
            return value
        raise ValueError('must be a number of channels from 1 to 8 or "source"')

    @model_validator(mode="after")
    def _split_needs_a_decode(self) -> Audio:
        if self.dual_mono == "split" and self.codec == "copy":
            raise ValueError(
                'dual_mono = "split" needs codec = "aac": a copied stream cannot be split'
            )
        return self


class Captions(BaseModel):
    """What happens to the programme's ARIB captions (kept when ffmpeg can decode them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep: bool = Field(default=True, description="keep captions in the MP4 as mov_text")
    sidecar: Literal["none", "srt", "ass"] = Field(
        default="none", description="also write the captions beside the MP4 (show.srt)"
    )


class Profile(BaseModel):
    """An encode intent and the backends that may fulfil it, in order of preference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    backends: list[Backend] = Field(min_length=1)
    # One scale for every backend: x264 -crf, qsv -global_quality (ICQ), vaapi -qp (CQP).
    quality: int = Field(default=23, ge=1, le=51)
    # ivtc: inverse telecine (fieldmatch, decimate) for 3:2 pulldown film and anime.
    deinterlace: Literal["auto", "on", "off", "ivtc"] = "auto"
    height: Annotated[int, Field(ge=144, le=2160)] | Literal["source"] = Field(
        default=720,
        description="output height, never above the source's; \"source\" keeps the source's",
    )
    audio: Audio = Audio()
    captions: Captions = Captions()
    x264_preset: Literal[
        "ultrafast",
        "superfast",
        "veryfast",
        "faster",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
    ] = "veryfast"
    qsv_preset: Literal["veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"] = (
        "medium"
    )
    # i965 on Haswell supports only CQP, CBR and VBR.
    vaapi_rc: Literal["CQP", "VBR"] = "CQP"
    vaapi_bitrate: str = Field(default="6M", pattern=r"^[1-9][0-9]*[kM]$")
    service_id: int | None = Field(
        default=None, ge=1, description="MPEG-TS programme to keep; none picks the main one"
    )

    @field_validator("height", mode="before")
    @classmethod
    def _source_height(cls, value: Any) -> Any:
        # Profiles written before "source" existed said None for the same thing.
        return "source" if value is None else value

    @field_validator("backends")
    @classmethod
    def _unique(cls, value: list[Backend]) -> list[Backend]:
        if len(set(value)) != len(value):
            raise ValueError("each backend may be listed once")
        return value

    @property
    def hardware_only(self) -> bool:
        """True when no software backend is accepted: the job never runs on the CPU."""
        return all(b.hardware for b in self.backends)

    @property
    def queue(self) -> str:
        """The capability queue a job with this profile is sent to first."""
        return QUEUE_GPU if self.backends[0].hardware else QUEUE_CPU


BUILTIN_PROFILES: dict[str, Profile] = {
    "h264-intel": Profile(
        description="Intel hardware only: QSV, then VAAPI (the Haswell path); never the CPU",
        backends=[Backend.QSV, Backend.VAAPI],
    ),
    "h264-x264": Profile(
        description="software libx264, bwdif deinterlace",
        backends=[Backend.X264],
    ),
    "h264-auto": Profile(
        description="Intel hardware when proven, else libx264",
        backends=[Backend.QSV, Backend.VAAPI, Backend.X264],
    ),
}


def all_profiles(user: dict[str, Profile]) -> dict[str, Profile]:
    """Built-in profiles overlaid with the user's (a user profile may replace a built-in)."""
    return {**BUILTIN_PROFILES, **user}


def get_profile(name: str, user: dict[str, Profile]) -> Profile:
    """The named profile, or a BadInputError listing the known names."""
    profiles = all_profiles(user)
    try:
        return profiles[name]
    except KeyError:
        known = ", ".join(sorted(profiles))
        raise BadInputError(f"unknown profile {name!r}; known profiles: {known}") from None


def choose_backend(profile: Profile, available: list[Backend]) -> Backend:
    """The first backend the profile accepts that this worker has proven."""
    for backend in profile.backends:
        if backend in available:
            return backend
    accepted = [b.value for b in profile.backends]
    have = [b.value for b in available]
    raise BackendUnavailable(
        f"no accepted backend is proven on this worker (profile accepts {', '.join(accepted)}; "
        f"this worker has {', '.join(have) or 'none'})",
        accepted=accepted,
        available=have,
    )
