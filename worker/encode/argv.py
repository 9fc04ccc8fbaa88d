"""The ffmpeg argv each backend builds for a profile and a source (never a shell string).

qsv: mpeg2_qsv/h264_qsv decode, vpp_qsv deinterlace and scale, h264_qsv (ICQ).
vaapi: VAAPI decode, deinterlace_vaapi, scale_vaapi, h264_vaapi (CQP or VBR); the only
hardware path on Haswell (i965). x264: bwdif, scale, libx264 -crf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from worker.captions import CaptionPlan
from worker.encode.audio import audio_args, decoder_mode, plan_audio
from worker.encode.caption_argv import with_captions
from worker.encode.ffprobe import MediaInfo
from worker.profiles import Backend, Profile

# Decoders QSV can run on the GPU; other sources are decoded in software and uploaded.
QSV_DECODERS = {"mpeg2video": "mpeg2_qsv", "h264": "h264_qsv", "hevc": "hevc_qsv"}
VAAPI_DECODABLE = {"mpeg2video", "h264", "hevc"}
# Surfaces added to the VAAPI decode pool: B-frame reordering plus deinterlace_vaapi's
# references (issue #20 §5); the qsv path already asks for the same 16.
VAAPI_EXTRA_FRAMES = 16


@dataclass(frozen=True)
class Command:
    """An ffmpeg invocation: its argv and the environment it needs."""

    argv: list[str]
    env: dict[str, str]
    backend: Backend


# Ends every video chain: ffmpeg 5.1 gives the encoder the SAR at the end of the graph,
# and a scaler that keeps the input's SAR would leave 4:3 pixels on a square-pixel size.
SQUARE_PIXELS = "setsar=sar=1"


# Inverse telecine for film and anime broadcast as 3:2 pulldown (29.97i → 23.976p):
# fieldmatch rebuilds the progressive frames, yadif only the combed ones it could not
# match (scene cuts, edits), decimate drops the one duplicate in five.
IVTC = "fieldmatch=order=auto:combmatch=sc,yadif=deint=interlaced,decimate"


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def output_size(profile: Profile, info: MediaInfo) -> tuple[int, int] | None:
    """Target width and height in square pixels with the source's display aspect, or None
    when the source already is that (square pixels, no more lines than the profile asks)."""
    video = info.video
    if video is None:
        return None
    wanted = video.height if profile.height == "source" else min(profile.height, video.height)
    height = max(2, wanted - wanted % 2)
    width = _even(video.display_width * height / video.height)
    if (width, height) == (video.width, video.height):
        return None
    return width, height


def should_deinterlace(profile: Profile, info: MediaInfo) -> bool:
    """Deinterlace when asked to, or (auto) when the source is interlaced."""
    if profile.deinterlace == "auto":
        return info.video is not None and info.video.interlaced
    return profile.deinterlace == "on"


def inverse_telecine(profile: Profile) -> bool:
    """True when the profile asks for 23.976p from telecined 29.97i (software filters,
    so the hardware backends decode in software and upload the matched frames)."""
    return profile.deinterlace == "ivtc"


def input_options(profile: Profile, info: MediaInfo) -> list[str]:
    """Demuxer and decoder options for broadcast recordings (before -i)."""
    opts = ["-fflags", "+discardcorrupt+genpts", "-analyzeduration", "10M", "-probesize", "32M"]
    if "aac" in info.audio_codecs:
        opts += ["-dual_mono_mode", decoder_mode(profile.audio)]
    if info.is_mpegts:
        # Keep streams across PMT version changes (new PIDs mid-recording).
        opts += ["-merge_pmt_versions", "1"]
    return opts


def map_options(info: MediaInfo) -> list[str]:
    """Keep the main programme's first video; drop captions and data (audio_options maps
    the programme's audio)."""
    video = f"0:p:{info.program_id}:v:0" if info.program_id is not None else "0:v:0"
    return ["-map", video, "-sn", "-dn", "-ignore_unknown"]


def audio_options(profile: Profile, info: MediaInfo) -> list[str]:
    """Every audio stream of the programme, in order (worker/encode/audio.py): AAC at the
    profile's bitrate and channels, dual mono split if asked, or a copy."""
    return audio_args(profile.audio, plan_audio(profile.audio, info))


def _head() -> list[str]:
    return ["-hide_banner", "-nostdin", "-y", "-nostats", "-loglevel", "error",
            "-progress", "pipe:1", "-stats_period", "0.5"]  # fmt: skip


def _tail(output: Path) -> list[str]:
    return ["-max_muxing_queue_size", "1024", "-movflags", "+faststart", "-f", "mp4", str(output)]


def x264_args(profile: Profile, info: MediaInfo, source: Path, output: Path) -> list[str]:
    """libx264 with bwdif: the software path every machine has."""
    filters = []
    if inverse_telecine(profile):
        filters.append(IVTC)
    elif should_deinterlace(profile, info):
        filters.append("bwdif=mode=send_frame:parity=auto:deint=all")
    size = output_size(profile, info)
    if size:
        filters.append(f"scale={size[0]}:{size[1]}")
    filters.append(SQUARE_PIXELS)
    return [
        *_head(),
        *input_options(profile, info), "-i", str(source),
        *map_options(info),
        "-vf", ",".join(filters),
        "-c:v", "libx264", "-preset", profile.x264_preset, "-crf", str(profile.quality),
        "-profile:v", "high", "-pix_fmt", "yuv420p",
        *audio_options(profile, info),
        *_tail(output),
    ]  # fmt: skip


def qsv_args(
    profile: Profile,
    info: MediaInfo,
    source: Path,
    output: Path,
    render_node: Path,
    *,
    low_power: bool = False,
) -> list[str]:
    """Intel Quick Sync (Broadwell and newer): decode, vpp_qsv and h264_qsv on the GPU."""
    codec = info.video.codec if info.video else ""
    vpp = []
    if should_deinterlace(profile, info):
        vpp.append("deinterlace=advanced")
    size = output_size(profile, info)
    if size:
        vpp += [f"w={size[0]}", f"h={size[1]}"]
    decode: list[str] = []
    chain = []
    if inverse_telecine(profile):
        chain += [IVTC, "format=nv12,hwupload=extra_hw_frames=64"]
    elif codec in QSV_DECODERS:
        decode = ["-hwaccel", "qsv", "-hwaccel_output_format", "qsv",
                  "-c:v", QSV_DECODERS[codec], "-extra_hw_frames", "16"]  # fmt: skip
    else:
        chain.append("format=nv12,hwupload=extra_hw_frames=64")
    chain.append("vpp_qsv=" + ":".join(vpp) if vpp else "vpp_qsv")
    # vpp_qsv passes the input's SAR through (1440x1080 SAR 4:3 scaled to 1280x720 would
    # play 2.37:1) and ffmpeg 5.1 takes the encoder's SAR from the end of the graph
    # (issue #20 §1): every chain ends in square pixels.
    chain.append(SQUARE_PIXELS)
    return [
        *_head(),
        # Pin iHD on the VA device QSV derives from: hwcontext_qsv forces driver=iHD only
        # on a child device it creates itself, so an inherited LIBVA_DRIVER_NAME=i965
        # would load i965 under QSV. ffmpeg 5.1's hwcontext_vaapi takes "driver" and calls
        # vaSetDriverName; Jellyfin's EncodingHelper.cs builds the same device (§4).
        "-init_hw_device", f"vaapi=va:{render_node},driver=iHD",
        "-init_hw_device", "qsv=qs@va", "-filter_hw_device", "qs",
        *input_options(profile, info), *decode, "-i", str(source),
        *map_options(info),
        "-vf", ",".join(chain),
        "-c:v", "h264_qsv", "-preset", profile.qsv_preset, "-profile:v", "high",
        *qsv_rate_control(profile, low_power=low_power), "-look_ahead", "0",
        *audio_options(profile, info),
        *_tail(output),
    ]  # fmt: skip


def qsv_rate_control(profile: Profile, *, low_power: bool) -> list[str]:
    """ICQ (-global_quality) on the shader encoder; CQP (-q:v) on the low-power one.

    VDEnc has no ICQ: on a low-power-only part (Jasper/Elkhart Lake, Arc, Meteor Lake)
    the runtime answers "Selected ratecontrol mode is unsupported" (ffmpeg 5.1
    qsvenc.c check_enc_param) to -global_quality alone (issue #20 §2). -q:v sets the
    qscale flag, which qsvenc maps to CQP at that QP (ffmpeg doc/encoders.texi).
    """
    if low_power:
        return ["-low_power", "1", "-q:v", str(profile.quality)]
    return ["-global_quality", str(profile.quality)]


def vaapi_args(
    profile: Profile,
    info: MediaInfo,
    source: Path,
    output: Path,
    render_node: Path,
    *,
    low_power: bool = False,
    driver: str = "",
) -> list[str]:
    """VA-API (i965 on Haswell, iHD on newer): deinterlace_vaapi, scale_vaapi, h264_vaapi."""
    codec = info.video.codec if info.video else ""
    decode: list[str] = []
    chain = []
    if inverse_telecine(profile):
        chain += [IVTC, "format=nv12,hwupload"]
    elif codec in VAAPI_DECODABLE:
        # ffmpeg 5.1's VAAPI decoder allocates a fixed pool (vaapi_decode.c: the
        # codec's references plus a few; 6 surfaces for MPEG-2) and deinterlace_vaapi
        # holds more for its references: IBBP broadcasts run dry ("Failed to allocate
        # a frame" mid-encode). Jellyfin's EncodingHelper.cs adds -extra_hw_frames to its
        # VAAPI decode for this (issue #20 §5).
        decode = ["-hwaccel", "vaapi", "-hwaccel_device", "va",
                  "-hwaccel_output_format", "vaapi",
                  "-extra_hw_frames", str(VAAPI_EXTRA_FRAMES)]  # fmt: skip
    else:
        chain.append("format=nv12,hwupload")
    if should_deinterlace(profile, info):
        chain.append("deinterlace_vaapi=mode=motion_adaptive:rate=frame")
    size = output_size(profile, info)
    if size:
        chain.append(f"scale_vaapi=w={size[0]}:h={size[1]}")
    chain.append(SQUARE_PIXELS)
    rate = vaapi_rate_control(profile, driver=driver)
    if low_power:
        # ffmpeg 5.1 vaapi_encode.c looks only at VAEntrypointEncSlice unless asked:
        # on a VDEnc-only part it fails "No usable encoding entrypoint found for
        # profile VAProfileH264High (7)." (issue #20 §2).
        rate += ["-low_power", "1"]
    return [
        *_head(),
        "-init_hw_device", f"vaapi=va:{render_node}", "-filter_hw_device", "va",
        *input_options(profile, info), *decode, "-i", str(source),
        *map_options(info),
        "-vf", ",".join(chain),
        "-c:v", "h264_vaapi", *rate, "-profile:v", "high",
        *audio_options(profile, info),
        *_tail(output),
    ]  # fmt: skip


def vaapi_rate_control(profile: Profile, *, driver: str) -> list[str]:
    """CQP at the profile's quality, or its bitrate: VBR, but CBR on i965.

    Jellyfin's EncodingHelper.cs forces CBR on i965 ("VBR in i965 driver may result in
    pixelated output"; issue #20 §6); i965 lists CQP, CBR and VBR on Haswell
    (i965_device_info.c, hsw_hw_codec_info).
    """
    if profile.vaapi_rc == "CQP":
        return ["-rc_mode", "CQP", "-qp", str(profile.quality)]
    if driver == "i965":
        rate = profile.vaapi_bitrate
        return ["-rc_mode", "CBR", "-b:v", rate, "-maxrate", rate]
    return ["-rc_mode", "VBR", "-b:v", profile.vaapi_bitrate,
            "-maxrate", _scaled(profile.vaapi_bitrate, 1.5)]  # fmt: skip


def _scaled(bitrate: str, factor: float) -> str:
    number, unit = int(bitrate[:-1]), bitrate[-1]
    return f"{round(number * factor)}{unit}"


def build_command(
    backend: Backend,
    profile: Profile,
    info: MediaInfo,
    source: Path,
    output: Path,
    *,
    ffmpeg: str = "ffmpeg",
    render_node: Path = Path("/dev/dri/renderD128"),
    vaapi_driver: str = "",
    low_power: bool = False,
    captions: CaptionPlan | None = None,
) -> Command:
    """The complete ffmpeg command for one backend (``low_power``: the GPU's fixed-function
    encoder, which low-power-only generations need, see worker/backends/generations.py; with
    ``captions``, its caption plan)."""
    env: dict[str, str] = {}
    if backend is Backend.X264:
        args = x264_args(profile, info, source, output)
    elif backend is Backend.QSV:
        args = qsv_args(profile, info, source, output, render_node, low_power=low_power)
    else:
        args = vaapi_args(
            profile, info, source, output, render_node, low_power=low_power, driver=vaapi_driver
        )
        if vaapi_driver:
            env["LIBVA_DRIVER_NAME"] = vaapi_driver
    if captions is not None:
        args = with_captions(args, captions)
    return Command(argv=[ffmpeg, *args], env=env, backend=backend)
