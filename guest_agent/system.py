"""What the guest sees of its GPU: render nodes, the VA-API driver, vainfo, ffmpeg's build."""

from __future__ import annotations

import grp
import os
import re
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from worker import process
from worker.backends.capabilities import compiled_decoders, compiled_encoders, compiled_filters
from worker.errors import KamadoError
from worker.settings.model import Settings

DRI = Path("/dev/dri")
# Where Debian, Fedora and others install VA-API drivers (<name>_drv_video.so).
DRIVER_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/dri"),
    Path("/usr/lib64/dri"),
    Path("/usr/lib/dri"),
)
ENCODERS = ("h264_qsv", "h264_vaapi", "libx264")
DECODERS = ("mpeg2_qsv", "h264_qsv", "mpeg2video")
FILTERS = (
    "vpp_qsv",
    "deinterlace_qsv",
    "scale_qsv",
    "deinterlace_vaapi",
    "scale_vaapi",
    "hwupload",
    "bwdif",
    "yadif",
    "scale",
)
VAINFO_TIMEOUT = 20.0


class RenderNode(BaseModel):
    """One /dev/dri/renderD* node and whether this process may open it."""

    model_config = ConfigDict(frozen=True)

    path: str
    group: str
    usable: bool = Field(description="this process may open it for reading and writing")


class Driver(BaseModel):
    """Which VA-API driver libva will load."""

    model_config = ConfigDict(frozen=True)

    libva_driver_name: str = Field(description="LIBVA_DRIVER_NAME in this environment")
    configured: str = Field(description="encode.vaapi_driver, set for the vaapi backend")
    installed: list[str] = Field(description="VA-API drivers found on disk (i965, iHD, ...)")


class VaInfo(BaseModel):
    """What `vainfo` said about the render node, when it is installed."""

    model_config = ConfigDict(frozen=True)

    installed: bool
    ok: bool = False
    vaapi_version: str = ""
    driver_version: str = ""
    h264_encode: list[str] = Field(default_factory=list)
    mpeg2_decode: bool = False
    video_proc: bool = False
    error: str = ""


class FfmpegBuild(BaseModel):
    """The ffmpeg build: version and the encoders, decoders and filters kamado uses."""

    model_config = ConfigDict(frozen=True)

    version: str
    encoders: dict[str, bool]
    decoders: dict[str, bool]
    filters: dict[str, bool]


def render_nodes(dri: Path = DRI) -> list[RenderNode]:
    """Every render node under /dev/dri with its group and our access to it."""
    if not dri.is_dir():
        return []
    nodes = []
    for path in sorted(dri.glob("renderD*")):
        try:
            gid = path.stat().st_gid
        except OSError:
            continue
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
        usable = os.access(path, os.R_OK | os.W_OK)
        nodes.append(RenderNode(path=str(path), group=group, usable=usable))
    return nodes


def installed_drivers(dirs: tuple[Path, ...] = DRIVER_DIRS) -> list[str]:
    """VA-API driver names found on disk, plus LIBVA_DRIVERS_PATH."""
    extra = [Path(p) for p in os.environ.get("LIBVA_DRIVERS_PATH", "").split(":") if p]
    names: set[str] = set()
    for directory in (*extra, *dirs):
        if directory.is_dir():
            names.update(
                p.name.removesuffix("_drv_video.so") for p in directory.glob("*_drv_video.so")
            )
    return sorted(names)


def driver(settings: Settings) -> Driver:
    """The VA-API driver environment: what libva is told to load and what is installed."""
    return Driver(
        libva_driver_name=os.environ.get("LIBVA_DRIVER_NAME", ""),
        configured=settings.encode.vaapi_driver,
        installed=installed_drivers(),
    )


_VAINFO_VERSION = re.compile(r"vainfo: VA-API version:\s*(.+)")
_VAINFO_DRIVER = re.compile(r"vainfo: Driver version:\s*(.+)")
_VAINFO_ENTRY = re.compile(r"^\s*(VAProfile\w+)\s*:\s*(VAEntrypoint\w+)")


def parse_vainfo(text: str, returncode: int) -> VaInfo:
    """Read vainfo's output (stdout and stderr together) into what the probe reports."""
    version = driver_version = ""
    h264: list[str] = []
    mpeg2 = proc = False
    for line in text.splitlines():
        if m := _VAINFO_VERSION.search(line):
            version = m.group(1).strip()
        elif m := _VAINFO_DRIVER.search(line):
            driver_version = m.group(1).strip()
        elif m := _VAINFO_ENTRY.match(line):
            profile, entry = m.groups()
            if profile.startswith("VAProfileH264") and entry.startswith("VAEntrypointEncSlice"):
                h264.append(f"{profile}:{entry}")
            mpeg2 = mpeg2 or (profile.startswith("VAProfileMPEG2") and entry == "VAEntrypointVLD")
            proc = proc or entry == "VAEntrypointVideoProc"
    ok = returncode == 0 and bool(driver_version)
    error = ""
    if not ok:
        errors = [li.strip() for li in text.splitlines() if "error" in li.lower() and li.strip()]
        error = errors[-1] if errors else process.last_line(text)
    return VaInfo(
        installed=True,
        ok=ok,
        vaapi_version=version,
        driver_version=driver_version,
        h264_encode=h264,
        mpeg2_decode=mpeg2,
        video_proc=proc,
        error=error,
    )


def vainfo(settings: Settings) -> VaInfo:
    """Run vainfo on the configured render node, when vainfo is installed (it is optional)."""
    exe = shutil.which("vainfo")
    if exe is None:
        return VaInfo(installed=False, error="vainfo is not installed (package vainfo)")
    env = (
        {"LIBVA_DRIVER_NAME": settings.encode.vaapi_driver}
        if settings.encode.vaapi_driver
        else None
    )
    argv = [exe, "--display", "drm", "--device", str(settings.encode.render_node)]
    try:
        result = process.run(argv, timeout=VAINFO_TIMEOUT, env=env)
    except KamadoError as e:
        return VaInfo(installed=True, error=str(e))
    return parse_vainfo(f"{result.stdout}\n{result.stderr_tail}", result.returncode)


def ffmpeg_build(ffmpeg: str) -> FfmpegBuild:
    """ffmpeg's version line and which of the encoders, decoders and filters kamado uses it has."""
    result = process.run([ffmpeg, "-hide_banner", "-version"], timeout=30)
    version = process.last_line(result.stdout.splitlines()[0] if result.stdout else "")
    encoders = compiled_encoders(ffmpeg)
    decoders = compiled_decoders(ffmpeg)
    filters = compiled_filters(ffmpeg)
    return FfmpegBuild(
        version=version,
        encoders={name: name in encoders for name in ENCODERS},
        decoders={name: name in decoders for name in DECODERS},
        filters={name: name in filters for name in FILTERS},
    )
