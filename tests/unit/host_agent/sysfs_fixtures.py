"""Fixture trees of /sys, /proc and /dev shaped like real VT-d hosts.

These are fixtures built from real-world data: the PCI ids, classes, drivers and IOMMU
grouping are those `lspci -nnk` and /sys/kernel/iommu_groups show on a Haswell Xeon E3
v3 (C226 chipset) with HD Graphics P4600, and on a Coffee Lake Xeon E-2100 host with
GVT-g enabled. The NVMe host (HASWELL_NVME_ROOT) is the same board with its root disk,
a Samsung PM981, at 01:00.0 behind root port 00:01.0: its block devices sit where the
kernel puts them (.../0000:01:00.0/nvme/nvme0/nvme0n1/nvme0n1pN, linked from
/sys/class/block), with Debian 12's /proc/self/mountinfo, /proc/swaps and
/proc/net/route of such a host, and an excerpt of Debian's pci.ids. No VT-d host exists
in CI, so preflight reads these trees instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HASWELL_CMDLINE_ON = (
    "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=3f0c3a9e-1b7d-4c1e-9a53-0d6c2c1e8f21 "
    "ro quiet intel_iommu=on iommu=pt"
)
HASWELL_CMDLINE_OFF = (
    "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=3f0c3a9e-1b7d-4c1e-9a53-0d6c2c1e8f21 "
    "ro quiet"
)
# The flags line of an E3-1245 v3, cut to the ones that matter here plus some neighbours.
HASWELL_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts "
    "acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc "
    "arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf pni "
    "pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid "
    "sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand "
    "lahf_lm abm cpuid_fault epb invpcid_single pti tpr_shadow vnmi flexpriority ept vpid "
    "fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm xsaveopt dtherm ida "
    "arat pln pts"
)


@dataclass(frozen=True)
class Pci:
    """One PCI function as sysfs shows it."""

    address: str
    vendor: str
    device: str
    cls: str
    driver: str = ""
    group: int | None = None
    boot_vga: bool | None = None
    parent: str = ""  # the bridge it sits behind ("" = the root complex), as in /sys/devices


# Haswell Xeon E3-1245 v3 on a C226 board: the iGPU alone in its group; the PT3 tuner
# card in the CPU's x16 slot shares group 1 only with its root port.
HASWELL_DEVICES = [
    Pci("0000:00:00.0", "0x8086", "0x0c08", "0x060000", "", 0),
    Pci("0000:00:01.0", "0x8086", "0x0c01", "0x060400", "pcieport", 1),
    # Earthsoft PT3 ISDB-T/S tuner card (Altera FPGA), the recorder's tuner.
    Pci("0000:01:00.0", "0x1172", "0x4c15", "0x048000", "pt3_drv", 1),
    Pci("0000:00:02.0", "0x8086", "0x041a", "0x030000", "i915", 2, boot_vga=True),
    Pci("0000:00:03.0", "0x8086", "0x0c0c", "0x040300", "snd_hda_intel", 3),
    Pci("0000:00:14.0", "0x8086", "0x8c31", "0x0c0330", "xhci_hcd", 4),
    Pci("0000:00:16.0", "0x8086", "0x8c3a", "0x078000", "mei_me", 5),
    Pci("0000:00:19.0", "0x8086", "0x153a", "0x020000", "e1000e", 6),
    Pci("0000:00:1c.0", "0x8086", "0x8c10", "0x060400", "pcieport", 7),
    Pci("0000:00:1f.0", "0x8086", "0x8c56", "0x060100", "lpc_ich", 8),
    Pci("0000:00:1f.2", "0x8086", "0x8c02", "0x010601", "ahci", 8),
    Pci("0000:00:1f.3", "0x8086", "0x8c22", "0x0c0500", "i801_smbus", 8),
]
# The same board with the x16 lanes split x8/x8: the CPU root ports have no ACS, so a NIC
# in the second slot lands in group 1 with the tuner card.
HASWELL_SHARED_GROUP = [
    *HASWELL_DEVICES,
    Pci("0000:00:01.1", "0x8086", "0x0c05", "0x060400", "pcieport", 1),
    Pci("0000:02:00.0", "0x8086", "0x1533", "0x020000", "igb", 1),
]

# A home server of the same generation whose x4 slot behind root port 00:01.0 holds its
# root disk, a Samsung PM981 NVMe SSD, at 01:00.0 (where the example once put a tuner
# card), and whose onboard I217-LM (e1000e, eno1) is its only network link. Layout,
# ids, major:minor numbers and mounts as Debian 12 installed on the whole disk shows them.
HASWELL_NVME_ROOT = [
    *[d for d in HASWELL_DEVICES if d.address != "0000:01:00.0"],
    Pci("0000:01:00.0", "0x144d", "0xa808", "0x010802", "nvme", 1, parent="0000:00:01.0"),
]


@dataclass(frozen=True)
class Block:
    """A block device as /sys/class/block shows it, below a PCI function's directory."""

    name: str
    dev: str  # major:minor
    under: str  # path below the PCI function's directory, e.g. nvme/nvme0/nvme0n1
    holders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Net:
    """A network interface as /sys/class/net shows it."""

    name: str
    address: str  # its PCI function
    flags: str = "0x1003"  # IFF_UP | IFF_BROADCAST | IFF_MULTICAST
    operstate: str = "up"


NVME_ROOT_DISK = [
    Block("nvme0n1", "259:0", "nvme/nvme0/nvme0n1"),
    Block("nvme0n1p1", "259:1", "nvme/nvme0/nvme0n1/nvme0n1p1"),
    Block("nvme0n1p2", "259:2", "nvme/nvme0/nvme0n1/nvme0n1p2"),
    Block("nvme0n1p3", "259:3", "nvme/nvme0/nvme0n1/nvme0n1p3"),
]
NVME_ADDRESS = "0000:01:00.0"
# /proc/self/mountinfo of that host (Debian 12, ext4 root, EFI system partition).
NVME_ROOT_MOUNTINFO = "\n".join(
    [
        "22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
        "23 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
        "24 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev "
        "rw,size=8038292k,nr_inodes=2009573,mode=755,inode64",
        "25 24 0:22 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts "
        "rw,gid=5,mode=620,ptmxmode=000",
        "26 28 0:23 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs "
        "rw,size=1611972k,mode=755,inode64",
        "28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro",
        "31 28 259:1 / /boot/efi rw,relatime shared:30 - vfat /dev/nvme0n1p1 "
        "rw,fmask=0077,dmask=0077,codepage=437,iocharset=ascii,shortname=mixed,utf8,"
        "errors=remount-ro",
    ]
)
NVME_ROOT_SWAPS = """\
Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/nvme0n1p3                          partition\t8388604\t\t0\t\t-2
"""
ENO1 = Net("eno1", "0000:00:19.0")
# /proc/net/route with eno1 carrying the default route and the LAN.
ENO1_ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eno1\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eno1\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
"""
# An excerpt of Debian 12's /usr/share/misc/pci.ids (package pci.ids 0.0~2023.04.11-1),
# the lines for the devices above, verbatim.
PCI_IDS_EXCERPT = """\
# List of PCI ID's (excerpt)
1172  Altera Corporation
144d  Samsung Electronics Co Ltd
\ta808  NVMe SSD Controller SM981/PM981/PM983
\t\t144d a801  SSD 970 EVO
8086  Intel Corporation
\t041a  Xeon E3-1200 v3 Processor Integrated Graphics Controller
\t0c01  Xeon E3-1200 v3/4th Gen Core Processor PCI Express x16 Controller
\t0c08  Xeon E3-1200 v3 Processor DRAM Controller
\t153a  Ethernet Connection I217-LM
C 01  Mass storage controller
\t06  SATA controller
\t\t01  AHCI 1.0
\t08  Non-Volatile memory controller
\t\t01  NVMHCI
\t\t02  NVM Express
C 02  Network controller
\t00  Ethernet controller
C 03  Display controller
\t00  VGA compatible controller
\t\t00  VGA controller
C 04  Multimedia controller
\t80  Multimedia controller
C 06  Bridge
\t04  PCI bridge
\t\t00  Normal decode
"""

# Coffee Lake Xeon E-2146G (UHD Graphics P630) booted with i915.enable_gvt=1, kvmgt loaded.
COFFEELAKE_DEVICES = [
    Pci("0000:00:00.0", "0x8086", "0x3e31", "0x060000", "", 0),
    Pci("0000:00:02.0", "0x8086", "0x3e96", "0x030000", "i915", 1, boot_vga=True),
    Pci("0000:00:14.0", "0x8086", "0xa36d", "0x0c0330", "xhci_hcd", 2),
]
GVTG_TYPES = {"i915-GVTg_V5_4": 2, "i915-GVTg_V5_8": 1}
USB_TUNER = ("0511", "0045")


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _write_devices(sys_dir: Path, devices: list[Pci], *, iommu: bool) -> None:
    for dev in devices:
        real = _device_dir(sys_dir, dev, devices)
        real.mkdir(parents=True)
        for name, value in (("vendor", dev.vendor), ("device", dev.device), ("class", dev.cls)):
            _write(real / name, value)
        if dev.boot_vga is not None:
            _write(real / "boot_vga", "1" if dev.boot_vga else "0")
        _link(sys_dir / "bus/pci/devices" / dev.address, real)
        if dev.driver:
            driver_dir = sys_dir / "bus/pci/drivers" / dev.driver
            driver_dir.mkdir(parents=True, exist_ok=True)
            _link(real / "driver", driver_dir)
        if iommu and dev.group is not None:
            group = sys_dir / "kernel/iommu_groups" / str(dev.group)
            (group / "devices").mkdir(parents=True, exist_ok=True)
            _link(real / "iommu_group", group)
            _link(group / "devices" / dev.address, real)


def _write_block(sys_dir: Path, block: list[tuple[str, list[Block]]]) -> None:
    for address, disks in block:
        base = (sys_dir / "bus/pci/devices" / address).resolve()
        for disk in disks:
            real = base / disk.under
            _write(real / "dev", disk.dev)
            _link(sys_dir / "class/block" / disk.name, real)
            for holder in disk.holders:
                (real / "holders" / holder).mkdir(parents=True, exist_ok=True)
    (sys_dir / "class/block").mkdir(parents=True, exist_ok=True)


def _write_nets(sys_dir: Path, nets: list[Net]) -> None:
    _link(sys_dir / "class/net/lo", sys_dir / "devices/virtual/net/lo")
    (sys_dir / "devices/virtual/net/lo").mkdir(parents=True, exist_ok=True)
    for net in nets:
        real = (sys_dir / "bus/pci/devices" / net.address).resolve() / "net" / net.name
        _write(real / "flags", net.flags)
        _write(real / "operstate", net.operstate)
        _link(real / "device", (sys_dir / "bus/pci/devices" / net.address).resolve())
        _link(sys_dir / "class/net" / net.name, real)


def build_host(
    root: Path,
    devices: list[Pci],
    *,
    iommu: bool = True,
    cmdline: str = HASWELL_CMDLINE_ON,
    vfio_loaded: bool = True,
    usb: list[tuple[str, str]] | None = None,
    gvtg_types: dict[str, int] | None = None,
    hugepages_free: int = 0,
    block: list[tuple[str, list[Block]]] | None = None,
    nets: list[Net] | None = None,
    mountinfo: str = "",
    swaps: str = "",
    routes: str = "",
    pci_ids: bool = True,
) -> Path:
    """Write a host tree under ``root`` and return ``root``.

    ``block`` puts block devices below PCI functions (address, devices); ``nets`` adds
    network interfaces; ``mountinfo``, ``swaps`` and ``routes`` become
    /proc/self/mountinfo, /proc/swaps and /proc/net/route.
    """
    sys_dir = root / "sys"
    _write(root / "proc/cpuinfo", f"processor\t: 0\nflags\t\t: {HASWELL_FLAGS}")
    _write(root / "proc/cmdline", cmdline)
    _write(root / "proc/self/mountinfo", mountinfo.rstrip("\n"))
    _write(root / "proc/swaps", (swaps or "Filename\tType\tSize\tUsed\tPriority").rstrip("\n"))
    _write(root / "proc/net/route", (routes or "Iface\tDestination\tGateway").rstrip("\n"))
    _write(root / "dev/kvm", "")
    if pci_ids:
        _write(root / "usr/share/misc/pci.ids", PCI_IDS_EXCERPT.rstrip("\n"))
    _write_devices(sys_dir, devices, iommu=iommu)
    if iommu:
        (sys_dir / "class/iommu/dmar0").mkdir(parents=True)
        (sys_dir / "class/iommu/dmar1").mkdir(parents=True)
    else:
        (sys_dir / "class/iommu").mkdir(parents=True)
        (sys_dir / "kernel/iommu_groups").mkdir(parents=True)
    if vfio_loaded:
        for module in ("vfio", "vfio_pci", "vfio_iommu_type1"):
            (sys_dir / "module" / module).mkdir(parents=True)
        _write(root / "dev/vfio/vfio", "")
    for index, (vendor, product) in enumerate(usb or [], start=1):
        port = sys_dir / "bus/usb/devices" / f"1-{index}"
        _write(port / "idVendor", vendor)
        _write(port / "idProduct", product)
    (sys_dir / "bus/usb/devices").mkdir(parents=True, exist_ok=True)
    for name, available in (gvtg_types or {}).items():
        base = sys_dir / "devices/pci0000:00/0000:00:02.0/mdev_supported_types" / name
        _write(base / "available_instances", str(available))
        _write(base / "device_api", "vfio-pci")
    _write_block(sys_dir, block or [])
    _write_nets(sys_dir, nets or [])
    pages = sys_dir / "kernel/mm/hugepages/hugepages-2048kB"
    _write(pages / "free_hugepages", str(hugepages_free))
    _write(pages / "nr_hugepages", str(hugepages_free))
    return root


def _device_dir(sys_dir: Path, dev: Pci, devices: list[Pci]) -> Path:
    """/sys/devices/pci0000:00/[bridge/]address, as the kernel nests functions behind bridges."""
    if not dev.parent:
        return sys_dir / "devices/pci0000:00" / dev.address
    parent = next(d for d in devices if d.address == dev.parent)
    return _device_dir(sys_dir, parent, devices) / dev.address


def bind(root: Path, address: str, driver: str) -> None:
    """Rebind a fixture device to another driver ('' unbinds it)."""
    link = (root / "sys/bus/pci/devices" / address).resolve() / "driver"
    link.unlink(missing_ok=True)
    if driver:
        driver_dir = root / "sys/bus/pci/drivers" / driver
        driver_dir.mkdir(parents=True, exist_ok=True)
        _link(link, driver_dir)


def create_mdev(root: Path, uuid: str) -> None:
    """Create a mediated device as writing its UUID to the type's create file would."""
    (root / "sys/bus/mdev/devices" / uuid).mkdir(parents=True)
