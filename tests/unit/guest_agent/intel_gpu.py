"""Real-world ffmpeg and vainfo output from Intel GPUs, for the one thing this machine lacks.

There is no Intel GPU here, so these named fixtures stand in for it. Each is text users
or the project's ffmpeg reference (§1, §8) recorded from real machines; the source is
named beside it. Only the hex pointers in ffmpeg's "[... @ 0x...]" prefixes vary.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_ENCODER = (
    "Error initializing output stream 0:0 -- Error while opening encoder for output stream "
    "#0:0 - maybe incorrect parameters such as bit_rate, rate, width or height"
)


@dataclass(frozen=True)
class Failure:
    """What ffmpeg left behind: its stderr tail and exit code, and what it means."""

    stderr: str
    returncode: int
    kind: str
    telling: str  # the line the reason must quote


# Reference §8; the first four as Debian 12's ffmpeg 5.1.9 prints them on a machine
# without a GPU (the rest are the lines users quoted from real hardware).
QSV_RUNTIME_MISSING = Failure(
    "[h264_qsv @ 0x55d0c2a4e2c0] Error initializing an internal MFX session: unsupported (-3)\n"
    + OPEN_ENCODER,
    1,
    "hardware",
    "Error initializing an internal MFX session: unsupported (-3)",
)
QSV_DEVICE_CREATION_FAILED = Failure(
    "Device creation failed: -542398533.\n"
    "Failed to set value 'qsv=hw' for option 'init_hw_device': Generic error in an external "
    "library\nError parsing global options: Generic error in an external library",
    1,
    "hardware",
    "Device creation failed: -542398533.",
)
QSV_NO_DEVICE_FOR_DECODER = Failure(
    "No device available for decoder: device type qsv needed for codec mpeg2_qsv.\n"
    "Device setup failed for decoder on input stream #0:0 : Invalid argument",
    1,
    "hardware",
    "No device available for decoder: device type qsv needed for codec mpeg2_qsv.",
)
VAAPI_NO_DISPLAY = Failure(
    "[AVHWDeviceContext @ 0x5614433b1980] No VA display found for device /dev/dri/renderD128.\n"
    "Device creation failed: -22.\n"
    "Failed to set value 'vaapi=va:/dev/dri/renderD128' for option 'init_hw_device': "
    "Invalid argument\nError parsing global options: Invalid argument",
    1,
    "hardware",
    "No VA display found for device /dev/dri/renderD128.",
)
# Haswell + i965 with h264_qsv (intel/libva#436).
HASWELL_QSV_INVALID_HANDLE = Failure(
    "[mpeg2_qsv @ 0x5604f3a1c040] Error initializing the MFX video decoder: invalid handle (-6)\n"
    "Error while decoding stream #0:0: Invalid argument",
    1,
    "hardware",
    "Error initializing the MFX video decoder: invalid handle (-6)",
)
# libvpl-only build on Skylake/Kaby Lake without libmfx1 (mrlt8/docker-wyze-bridge#736).
SKYLAKE_VPL_SESSION = Failure(
    "[AVHWDeviceContext @ 0x55fd5e0c6e40] Error creating a MFX session: -9.",
    1,
    "hardware",
    "Error creating a MFX session: -9.",
)
# Sandy Bridge: libmfx asserts and the process dies by SIGSEGV (HandBrake/HandBrake#3006).
SANDY_BRIDGE_LIBMFX_CRASH = Failure(
    "Assertion 'MFX_HW_UNKNOWN != devItem.platform' failed.",
    -11,
    "crash",
    "Assertion 'MFX_HW_UNKNOWN != devItem.platform' failed.",
)
UNKNOWN_ENCODER = Failure("Unknown encoder 'h264_foo'", 1, "option", "Unknown encoder 'h264_foo'")
UNRECOGNIZED_OPTION = Failure(
    "Unrecognized option 'nosuchopt'.\nError splitting the argument list: Option not found",
    1,
    "option",
    "Unrecognized option 'nosuchopt'.",
)
BAD_PRESET_VALUE = Failure(
    '[h264_qsv @ 0x55f1b0b43a80] Unable to parse option value "ultrafast"\n'
    "[h264_qsv @ 0x55f1b0b43a80] Error setting option preset to value ultrafast.\n" + OPEN_ENCODER,
    1,
    "option",
    'Unable to parse option value "ultrafast"',
)
# The QSV runtime answered, so the GPU works: the profile asked for a mode it lacks.
QSV_RATECONTROL_UNSUPPORTED = Failure(
    "[h264_qsv @ 0x5633d3d2c900] Selected ratecontrol mode is not supported by the QSV "
    "runtime. Choose a different mode.\n" + OPEN_ENCODER,
    1,
    "option",
    "Selected ratecontrol mode is not supported by the QSV runtime. Choose a different mode.",
)
QSV_CONFLICTING_MODES = Failure(
    "[h264_qsv @ 0x5633d3d2c900] More than one of: { constant qscale, lookahead, VCM } "
    "requested, only one of them can be used at a time.\n" + OPEN_ENCODER,
    1,
    "option",
    "More than one of: { constant qscale, lookahead, VCM } requested",
)

# Low-power-only encoders (Jasper/Elkhart Lake, Arc, Meteor Lake; issue #20 §2), as
# ffmpeg 5.1's sources word them, with the hex pointer a real run prints.
# libavcodec/vaapi_encode.c, vaapi_encode_profile_entrypoint(), AV_LOG_ERROR: without
# -low_power 1 only VAEntrypointEncSlice is usable; VAProfileH264High is 7 in va.h.
VAAPI_NO_ENTRYPOINT = Failure(
    "[h264_vaapi @ 0x55c1d6a0b2c0] No usable encoding entrypoint found for profile "
    "VAProfileH264High (7).\n" + OPEN_ENCODER,
    1,
    "option",
    "No usable encoding entrypoint found for profile VAProfileH264High (7).",
)
# libavcodec/qsvenc.c: check_enc_param() logs each field MFXVideoENCODE_Query changed
# (ICQ refused by VDEnc), then qsv_init_encoder's summary line.
QSV_ICQ_ON_LOW_POWER = Failure(
    "[h264_qsv @ 0x5633d3d2c900] Selected ratecontrol mode is unsupported\n"
    "[h264_qsv @ 0x5633d3d2c900] Selected ratecontrol mode is not supported by the QSV "
    "runtime. Choose a different mode.\n" + OPEN_ENCODER,
    1,
    "option",
    "Selected ratecontrol mode is unsupported",
)
LOW_POWER_CAUSES = {
    "VAAPI_NO_ENTRYPOINT": VAAPI_NO_ENTRYPOINT,
    "QSV_ICQ_ON_LOW_POWER": QSV_ICQ_ON_LOW_POWER,
    # The summary line alone (the reference §8): what ICQ on VDEnc ends with.
    "QSV_RATECONTROL_UNSUPPORTED": QSV_RATECONTROL_UNSUPPORTED,
}
# qsvenc.c check_enc_param() when -low_power 1 was asked of a part without VDEnc
# (Haswell/Broadwell): the opposite cause, so no low-power retry.
QSV_LOW_POWER_UNSUPPORTED = Failure(
    "[h264_qsv @ 0x55b0f3c8e040] Low power mode is unsupported\n"
    "[h264_qsv @ 0x55b0f3c8e040] some encoding parameters are not supported by the QSV "
    "runtime. Please double check the input parameters.\n" + OPEN_ENCODER,
    1,
    "option",
    "Low power mode is unsupported",
)

ALL = {
    "VAAPI_NO_ENTRYPOINT": VAAPI_NO_ENTRYPOINT,
    "QSV_ICQ_ON_LOW_POWER": QSV_ICQ_ON_LOW_POWER,
    "QSV_LOW_POWER_UNSUPPORTED": QSV_LOW_POWER_UNSUPPORTED,
    "QSV_RUNTIME_MISSING": QSV_RUNTIME_MISSING,
    "QSV_DEVICE_CREATION_FAILED": QSV_DEVICE_CREATION_FAILED,
    "QSV_NO_DEVICE_FOR_DECODER": QSV_NO_DEVICE_FOR_DECODER,
    "VAAPI_NO_DISPLAY": VAAPI_NO_DISPLAY,
    "HASWELL_QSV_INVALID_HANDLE": HASWELL_QSV_INVALID_HANDLE,
    "SKYLAKE_VPL_SESSION": SKYLAKE_VPL_SESSION,
    "SANDY_BRIDGE_LIBMFX_CRASH": SANDY_BRIDGE_LIBMFX_CRASH,
    "UNKNOWN_ENCODER": UNKNOWN_ENCODER,
    "UNRECOGNIZED_OPTION": UNRECOGNIZED_OPTION,
    "BAD_PRESET_VALUE": BAD_PRESET_VALUE,
    "QSV_RATECONTROL_UNSUPPORTED": QSV_RATECONTROL_UNSUPPORTED,
    "QSV_CONFLICTING_MODES": QSV_CONFLICTING_MODES,
}

# vainfo on a Haswell i5-4278U, Debian-like paths; iHD refuses Haswell and libva falls
# back to i965 (intel/intel-vaapi-driver#559; the profile list is cut where it was quoted).
HASWELL_VAINFO = """\
error: XDG_RUNTIME_DIR not set in the environment.
error: can't connect to X server!
libva info: VA-API version 1.15.0
libva info: Trying to open /usr/lib/x86_64-linux-gnu/dri/iHD_drv_video.so
libva info: Found init function __vaDriverInit_1_15
libva error: /usr/lib/x86_64-linux-gnu/dri/iHD_drv_video.so init failed
libva info: va_openDriver() returns 1
libva info: Trying to open /usr/lib/x86_64-linux-gnu/dri/i965_drv_video.so
libva info: Found init function __vaDriverInit_1_8
libva info: va_openDriver() returns 0
vainfo: VA-API version: 1.15 (libva 2.15.0)
vainfo: Driver version: Intel i965 driver for Intel(R) Haswell - 2.4.1
vainfo: Supported profile and entrypoints
      VAProfileMPEG2Simple            : VAEntrypointVLD
      VAProfileMPEG2Simple            : VAEntrypointEncSlice
      VAProfileMPEG2Main              : VAEntrypointVLD
      VAProfileMPEG2Main              : VAEntrypointEncSlice
      VAProfileH264ConstrainedBaseline: VAEntrypointVLD
      VAProfileH264ConstrainedBaseline: VAEntrypointEncSlice
      VAProfileH264Main               : VAEntrypointVLD
      VAProfileH264Main               : VAEntrypointEncSlice
"""

# vainfo with iHD on a Broadwell-or-newer GPU (NixOS/nixpkgs#90094), tab-separated.
IHD_VAINFO = """\
libva info: VA-API version 1.7.0
libva info: User environment variable requested driver 'iHD'
libva info: Trying to open /run/opengl-driver/lib/dri/iHD_drv_video.so
libva info: Found init function __vaDriverInit_1_7
libva info: va_openDriver() returns 0
vainfo: VA-API version: 1.7 (libva 2.7.1)
vainfo: Driver version: Intel iHD driver for Intel(R) Gen Graphics - 20.1.1 ()
vainfo: Supported profile and entrypoints
      VAProfileNone                   :\tVAEntrypointVideoProc
      VAProfileNone                   :\tVAEntrypointStats
      VAProfileMPEG2Simple            :\tVAEntrypointVLD
      VAProfileMPEG2Simple            :\tVAEntrypointEncSlice
      VAProfileMPEG2Main              :\tVAEntrypointVLD
      VAProfileMPEG2Main              :\tVAEntrypointEncSlice
      VAProfileH264Main               :\tVAEntrypointVLD
      VAProfileH264Main               :\tVAEntrypointEncSlice
      VAProfileH264Main               :\tVAEntrypointFEI
      VAProfileH264Main               :\tVAEntrypointEncSliceLP
      VAProfileH264High               :\tVAEntrypointVLD
      VAProfileH264High               :\tVAEntrypointEncSlice
"""

# vainfo where libva finds no usable driver for the node (a GPU not passed through).
VAINFO_NO_DRIVER = """\
libva info: VA-API version 1.17.0
libva error: vaGetDriverNameByIndex() failed with unknown libva error, driver_name = (null)
vaInitialize failed with error code -1 (unknown libva error),exit
"""
