"""The Intel iGPU generations kamado knows: backend, driver, runtime, rate control, quirks.

One table, read by the argv builders' callers (low power, driver), ``kamado guest probe``
(it names the generation it found from the PCI id and what it expects there), the guest
image recipe (``deploy/guest/provision.sh`` asks
``python3 -m worker.backends.generations packages``) and the Dockerfile (the same command
at build time). Stdlib only, so both can run it before kamado is installed.

Sources: the project's ffmpeg reference §1 and §4 (i965's ``hsw_hw_codec_info``, the
intel/media-driver platform list, intel/libvpl's runtime split), Debian 12's package list
(``libmfx1`` 22.5.4, ``libmfx-gen1.2`` 22.6.4, ``intel-media-va-driver`` 23.1.1), and
issue #20 (low-power-only parts, Meteor Lake's driver floor).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from worker.backends.gpu_ids import INTEL_VENDOR, PCI_IDS


class LowPower(Enum):
    """Whether H.264 encode runs on the fixed-function (VDEnc, "low power") entrypoint."""

    NONE = "none"  # no low-power encoder at all (Haswell, Broadwell)
    OPTIONAL = "optional"  # both entrypoints; the shader (VME) one is the default
    REQUIRED = "required"  # only VDEnc: ICQ unsupported, h264_vaapi needs -low_power 1


@dataclass(frozen=True)
class Generation:
    """What one Intel generation needs and gives for kamado's H.264 encode."""

    key: str
    name: str
    backends: tuple[str, ...]  # hardware backends expected to work, best first
    va_driver: str  # the VA-API driver libva must load: i965 or iHD
    packages: tuple[str, ...]  # Debian 12 packages beyond ffmpeg
    qsv_rate_control: tuple[str, ...]
    vaapi_rate_control: tuple[str, ...]
    low_power: LowPower
    min_driver: str = ""  # the oldest iHD release that knows the part
    quirks: tuple[str, ...] = field(default=())

    @property
    def pci_ids(self) -> frozenset[int]:
        """The device ids the kernel's i915 lists for this generation."""
        return PCI_IDS[self.key]


# Media SDK runtime (libmfx1, BDW..TGL/RKL/DG1) and the iHD build with the shader kernels:
# the free intel-media-va-driver has no H.264 encode on Broadwell..Ice Lake (issue #20 §3).
_MSDK = ("intel-media-va-driver-non-free", "libmfx1", "firmware-misc-nonfree")
# oneVPL GPU runtime: Tiger Lake and newer; Alder Lake and newer need it on Debian 12
# because the Media SDK runtime does not know them (intel/libvpl README; issue #20 §3).
_VPL = ("intel-media-va-driver-non-free", "libmfx1", "libmfx-gen1.2", "firmware-misc-nonfree")
_IHD_QSV_MODES = ("ICQ", "CQP", "VBR", "CBR")
_IHD_VAAPI_MODES = ("CQP", "CBR", "VBR", "ICQ")
# VDEnc has no ICQ: CQP and the bitrate modes only (issue #20 §2).
_LP_MODES = ("CQP", "VBR", "CBR")
_HUC = "low-power bitrate modes (VBR, CBR) need the HuC firmware: firmware-misc-nonfree"

GENERATIONS: tuple[Generation, ...] = (
    Generation(
        "haswell", "Haswell (Gen7.5, 4th-gen Core, Xeon E3 v3)", ("vaapi",), "i965",
        ("i965-va-driver",), (), ("CQP", "CBR", "VBR"), LowPower.NONE,
        quirks=(
            "no QSV runtime supports Haswell on Linux: vaapi (i965) only",
            "i965 VBR may give pixelated output: kamado encodes CBR there (Jellyfin)",
        ),
    ),
    Generation(
        "broadwell", "Broadwell (Gen8, 5th-gen Core)", ("qsv", "vaapi"), "iHD", _MSDK,
        _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.NONE,
        quirks=("the free intel-media-va-driver has no H.264 encode here: use non-free",),
    ),
    Generation(
        "skylake", "Skylake (Gen9, 6th-gen Core)", ("qsv", "vaapi"), "iHD", _MSDK,
        _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=("the free intel-media-va-driver has no H.264 encode here: use non-free",),
    ),
    Generation(
        "apollo_lake", "Apollo Lake / Gemini Lake (Gen9 LP, Celeron/Pentium J/N)",
        ("qsv", "vaapi"), "iHD", _MSDK, _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=("the free intel-media-va-driver has no H.264 encode here: use non-free",),
    ),
    Generation(
        "kaby_lake", "Kaby Lake (Gen9.5, 7th-gen Core)", ("qsv", "vaapi"), "iHD", _MSDK,
        _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=("the free intel-media-va-driver has no H.264 encode here: use non-free",),
    ),
    Generation(
        "coffee_lake", "Coffee Lake / Whiskey Lake / Comet Lake (Gen9.5, 8th-10th-gen Core)",
        ("qsv", "vaapi"), "iHD", _MSDK, _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=("the free intel-media-va-driver has no H.264 encode here: use non-free",),
    ),
    Generation(
        "ice_lake", "Ice Lake (Gen11, 10th-gen Core mobile)", ("qsv", "vaapi"), "iHD", _MSDK,
        _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=("the free intel-media-va-driver has no H.264 encode here: use non-free",),
    ),
    Generation(
        "jasper_lake", "Jasper Lake / Elkhart Lake (Gen11 LP, Celeron/Pentium N, Atom x6000)",
        ("qsv", "vaapi"), "iHD", _MSDK, _LP_MODES, _LP_MODES, LowPower.REQUIRED,
        quirks=("H.264 encode is low-power only: no ICQ, h264_vaapi needs -low_power 1", _HUC),
    ),
    Generation(
        "tiger_lake", "Tiger Lake / Rocket Lake / DG1 (Gen12, 11th-gen Core)",
        ("qsv", "vaapi"), "iHD", _VPL, _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=("the last generation the Media SDK runtime covers; oneVPL covers it too",),
    ),
    Generation(
        "alder_lake", "Alder Lake / Raptor Lake (Gen12, 12th-14th-gen Core, N100)",
        ("qsv", "vaapi"), "iHD", _VPL, _IHD_QSV_MODES, _IHD_VAAPI_MODES, LowPower.OPTIONAL,
        quirks=(
            "h264_qsv needs the oneVPL runtime libmfx-gen1.2 (the Media SDK one does not "
            "know Alder Lake)",
            "Alder Lake-N (N100, N200) may expose the low-power encoder only: the probe "
            "retries with -low_power 1 when ffmpeg names that cause",
        ),
    ),
    Generation(
        "meteor_lake", "Meteor Lake / Arrow Lake (Xe-LPG, Core Ultra)", ("qsv", "vaapi"),
        "iHD", _VPL, _LP_MODES, _LP_MODES, LowPower.REQUIRED, min_driver="23.3",
        quirks=(
            "needs intel-media-va-driver 23.3 or newer; Debian 12 ships 23.1.1 "
            "(use bookworm-backports or Debian 13)",
            "H.264 encode is low-power only: no ICQ, h264_vaapi needs -low_power 1",
            _HUC,
        ),
    ),
    Generation(
        "arc", "Arc A-series (DG2, Xe-HPG discrete)", ("qsv", "vaapi"), "iHD", _VPL,
        _LP_MODES, _LP_MODES, LowPower.REQUIRED, min_driver="22.5",
        quirks=(
            "H.264 encode is low-power only: no ICQ, h264_vaapi needs -low_power 1",
            _HUC,
            "a discrete card is its own render node: set encode.render_node to it",
        ),
    ),
)  # fmt: skip

BY_KEY = {g.key: g for g in GENERATIONS}
# Installed in every guest and image: ffmpeg with VAAPI/QSV, libavcodec-extra (ffmpeg's
# ARIB caption decoder, libaribb24, so captions are kept), and the tools the probe reads.
BASE_PACKAGES = ("ffmpeg", "libavcodec-extra", "vainfo")


def generation_for(vendor: int, device: int) -> Generation | None:
    """The generation of an Intel GPU by its PCI ids (None for another vendor or an id
    the table does not know)."""
    if vendor != INTEL_VENDOR:
        return None
    return next((g for g in GENERATIONS if device in g.pci_ids), None)


def read_pci_id(render_node: Path, sys_root: Path = Path("/sys")) -> tuple[int, int] | None:
    """(vendor, device) of the GPU behind a render node, from sysfs (None if unreadable)."""
    device_dir = sys_root / "class" / "drm" / render_node.name / "device"
    try:
        vendor = int((device_dir / "vendor").read_text().strip(), 16)
        device = int((device_dir / "device").read_text().strip(), 16)
    except (OSError, ValueError):
        return None
    return vendor, device


def packages(*, non_free: bool) -> list[str]:
    """The Debian 12 packages a guest or image needs to cover every generation: i965 for
    Haswell, iHD and both QSV runtimes for the rest (non-free for H.264 encode on
    Broadwell..Ice Lake; the free iHD otherwise)."""
    wanted: list[str] = list(BASE_PACKAGES)
    for generation in GENERATIONS:
        for name in generation.packages:
            if not non_free:
                name = name.removesuffix("-non-free")
                if name == "firmware-misc-nonfree":
                    continue
            if name not in wanted:
                wanted.append(name)
    return wanted


def main(argv: list[str]) -> int:
    """``python3 -m worker.backends.generations packages [--non-free]``: one package a line."""
    if not argv or argv[0] != "packages" or any(a != "--non-free" for a in argv[1:]):
        print(
            "usage: python3 -m worker.backends.generations packages [--non-free]", file=sys.stderr
        )
        return 2
    print("\n".join(packages(non_free="--non-free" in argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
