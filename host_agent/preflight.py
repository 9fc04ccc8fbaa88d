"""Passthrough preflight: read the host's real state and say what blocks the VM, with the fix.

Every path is read under ``root`` (``/`` on a real host), so tests run the same code on
fixture trees shaped like real hosts. libvirt facts arrive from the caller (the CLI asks
:mod:`host_agent.lifecycle`), which keeps this module free of libvirt.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from host_agent.host_use import host_use
from host_agent.pci_names import pci_name
from host_agent.sysfs import Host
from worker.settings.host import HostSettings, VmSettings

VFIO_MODULES = ("vfio", "vfio_pci", "vfio_iommu_type1")
PCI_BRIDGE_CLASS = "0x0604"
# Drivers that leave a device free for VFIO (pcieport is a bridge's own service driver).
FREE_DRIVERS = frozenset({"", "vfio-pci", "pci-stub", "pcieport"})


class Status(StrEnum):
    """The outcome of one check; only ``fail`` makes the preflight fail."""

    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    WARN = "warn"
    FAIL = "fail"


class Check(BaseModel):
    """One preflight check: what was checked, what was found, and how to fix it."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    detail: str
    fix: str = ""


class Report(BaseModel):
    """Every check, in order."""

    model_config = ConfigDict(frozen=True)

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when no required check failed."""
        return all(c.status != Status.FAIL for c in self.checks)


@dataclass(frozen=True)
class LibvirtFacts:
    """What the caller learnt from libvirt: the connection and its domain capabilities."""

    error: str = ""
    domain_capabilities: str | None = None


LibvirtProbe = Callable[[], LibvirtFacts]


def check_cpu(host: Host, vm: VmSettings) -> Check:
    """The CPU offers hardware virtualisation (needed unless the VM runs under TCG)."""
    flags = host.read("/proc/cpuinfo").split()
    if "vmx" in flags or "svm" in flags:
        ok = Check(name="cpu-virtualisation", status=Status.PASS, detail="vmx present")
        if host.path("/dev/kvm").exists():
            return ok
        return ok.model_copy(
            update={
                "status": Status.FAIL if vm.domain_type == "kvm" else Status.WARN,
                "detail": "vmx present but /dev/kvm is missing",
                "fix": "modprobe kvm_intel (and check dmesg for 'disabled by bios')",
            }
        )
    return Check(
        name="cpu-virtualisation",
        status=Status.FAIL if vm.domain_type == "kvm" else Status.WARN,
        detail="no vmx/svm flag in /proc/cpuinfo",
        fix="enable Intel Virtualization Technology (VT-x) in the firmware setup",
    )


def check_iommu(host: Host) -> Check:
    """The IOMMU (VT-d) is on: DMAR units registered and IOMMU groups populated."""
    units = host.entries("/sys/class/iommu")
    groups = host.entries("/sys/kernel/iommu_groups")
    cmdline = host.read("/proc/cmdline").split()
    asked = "intel_iommu=on" in cmdline
    if units and groups:
        detail = f"{len(units)} IOMMU unit(s) ({', '.join(units)}), {len(groups)} groups"
        return Check(name="iommu", status=Status.PASS, detail=detail)
    if asked:
        return Check(
            name="iommu",
            status=Status.FAIL,
            detail="intel_iommu=on is on the kernel command line but no IOMMU is registered",
            fix="enable VT-d (Intel Virtualization Technology for Directed I/O) in the firmware",
        )
    return Check(
        name="iommu",
        status=Status.FAIL,
        detail="no IOMMU registered and intel_iommu=on is not on the kernel command line",
        fix="add 'intel_iommu=on iommu=pt' to GRUB_CMDLINE_LINUX in /etc/default/grub, run "
        "update-grub and reboot; enable VT-d in the firmware",
    )


def check_vfio(host: Host) -> Check:
    """The vfio modules are loaded and /dev/vfio/vfio exists."""
    missing = [m for m in VFIO_MODULES if not host.path(f"/sys/module/{m}").exists()]
    if not missing and host.path("/dev/vfio/vfio").exists():
        return Check(name="vfio", status=Status.PASS, detail="vfio, vfio_pci, vfio_iommu_type1")
    detail = f"modules not loaded: {', '.join(missing)}" if missing else "/dev/vfio/vfio missing"
    return Check(
        name="vfio",
        status=Status.FAIL,
        detail=detail,
        fix="modprobe vfio-pci vfio_iommu_type1, and list them in /etc/modules-load.d/vfio.conf",
    )


def check_pci_device(host: Host, address: str, label: str, vendor: str = "") -> Check:
    """The PCI device exists (for the iGPU: with the expected vendor and a display class)."""
    name = f"device {address}"
    if not host.path(host.pci(address)).exists():
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{label}: no PCI device at {address}",
            fix="check the address with lspci -D and set it in the config",
        )
    found_vendor = host.read(host.pci(address) + "/vendor")
    device = host.read(host.pci(address) + "/device")
    cls = host.read(host.pci(address) + "/class")
    detail = f"{label}: {found_vendor}:{device} class {cls}"
    if vendor and found_vendor.lower() != vendor.lower():
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{detail}, expected vendor {vendor}",
            fix="the address points at another device; find the iGPU with lspci -D -d 8086:",
        )
    if vendor and not cls.startswith("0x03"):
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{detail}, not a display controller (class 0x03xxxx)",
            fix="the address points at another device; find the iGPU with lspci -D -d 8086:",
        )
    return Check(name=name, status=Status.PASS, detail=detail)


def describe_device(host: Host, address: str) -> str:
    """What a PCI device is, as lspci -nnk would say: names, ids, class and driver."""
    vendor, device, cls = host.pci_ids(address)
    name = pci_name(host, vendor, device, cls)
    driver = host.driver(address)
    bound = f"driver {driver}" if driver else "no driver"
    return f"{name.vendor} {name.device} [{vendor}:{device}], {name.cls} (class 0x{cls}), {bound}"


def check_host_use(host: Host, address: str, label: str, *, warn_bound: bool = True) -> Check:
    """The device is not one the running host uses: no mounted disk, no live network interface.

    A device bound to another host driver is a warning (libvirt takes it from the host at
    start); ``warn_bound`` is off for the iGPU, whose driver has its own check.
    """
    name = f"host-use {address}"
    what = describe_device(host, address)
    use = host_use(host, address)
    if use.in_use:
        uses = ", ".join(use.block + use.network)
        kind = "disk" if use.block else "network"
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{label} at {address} is {what}; the host uses it: {uses}. Passing it "
            f"would hand the host's own {kind} to the VM",
            fix=f"remove {address} from the VM's devices (lspci -nnk -s {address} shows it); "
            "find the device you meant with lspci -nn",
        )
    driver = host.driver(address)
    if warn_bound and driver and driver not in FREE_DRIVERS:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{label} at {address} is {what}; libvirt takes it from the host's "
            f"{driver} driver at every VM start",
            fix="make sure the host does not need it; bind it to vfio-pci at boot with "
            f"driverctl set-override {address} vfio-pci",
        )
    return Check(name=name, status=Status.PASS, detail=f"{label} at {address} is {what}")


def check_group(host: Host, address: str, passed: set[str]) -> Check:
    """Every other endpoint in the device's IOMMU group is passed through too or unbound."""
    name = f"iommu-group {address}"
    group = host.iommu_group(address)
    if group is None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{address} is in no IOMMU group",
            fix="turn the IOMMU on (see the iommu check)",
        )
    members = host.entries(f"/sys/kernel/iommu_groups/{group}/devices")
    described = []
    blocking = []
    for member in members:
        driver = host.driver(member)
        described.append(f"{member} ({driver or 'no driver'})")
        is_bridge = host.read(host.pci(member) + "/class").startswith(PCI_BRIDGE_CLASS)
        if member not in passed and not is_bridge and driver not in FREE_DRIVERS:
            blocking.append(f"{member} ({driver})")
    detail = f"group {group}: {', '.join(described)}"
    if blocking:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{detail}; shared with {', '.join(blocking)} used by the host",
            fix="pass those devices through too, unbind them, or move the card to a slot "
            "with its own group (an ACS override patch is a last resort)",
        )
    return Check(name=name, status=Status.PASS, detail=detail)


def check_gpu_driver(host: Host, vm: VmSettings) -> Check:
    """The iGPU's current driver suits the chosen mode (vfio-pci, or i915 for GVT-g)."""
    address = vm.gpu.address
    driver = host.driver(address)
    if vm.gpu.kind == "gvtg":
        if driver == "i915":
            return Check(name="gpu-driver", status=Status.PASS, detail="i915 (hosts GVT-g)")
        return Check(
            name="gpu-driver",
            status=Status.FAIL,
            detail=f"{address} is bound to {driver or 'no driver'}; GVT-g runs inside i915",
            fix="let i915 drive the iGPU (remove vfio-pci.ids for it) and set i915.enable_gvt=1",
        )
    if driver in ("vfio-pci", ""):
        detail = driver or "no driver; libvirt binds vfio-pci at start"
        return Check(name="gpu-driver", status=Status.PASS, detail=detail)
    return Check(
        name="gpu-driver",
        status=Status.WARN,
        detail=f"{address} is bound to {driver}; libvirt must unbind it at start, which "
        "i915 on the boot GPU often does not survive",
        fix=vfio_at_boot(host, address),
    )


def vfio_at_boot(host: Host, address: str) -> str:
    """How to give ``address`` to vfio-pci at boot, naming the device the fix binds.

    ``vfio-pci.ids`` binds every device with that vendor:device, so when another device on
    the host shares the id the fix is a per-address override instead.
    """
    vendor, device, cls = host.pci_ids(address)
    name = pci_name(host, vendor, device, cls)
    twins = [
        other
        for other in host.entries("/sys/bus/pci/devices")
        if other != address and host.pci_ids(other)[:2] == (vendor, device)
    ]
    if twins:
        return (
            f"{', '.join(twins)} share the id {vendor}:{device} of {address}, so vfio-pci.ids "
            f"would take them from the host too: bind only {address} with driverctl "
            f"set-override {address} vfio-pci (package driverctl)"
        )
    return (
        f"bind {address} ({name.vendor} {name.device}) to vfio-pci at boot: add "
        f"'vfio-pci.ids={vendor}:{device}' to the kernel command line and "
        "'softdep i915 pre: vfio-pci' to /etc/modprobe.d/vfio.conf"
    )


def check_boot_vga(host: Host, address: str) -> Check:
    """Whether the host's firmware console is on the iGPU (it goes dark when passed)."""
    if host.read(host.pci(address) + "/boot_vga") == "1":
        return Check(
            name="boot-vga",
            status=Status.WARN,
            detail=f"{address} is the host's boot display",
            fix="run the host headless, or make another card the primary display in firmware",
        )
    return Check(name="boot-vga", status=Status.PASS, detail="not the boot display")


def check_gvtg(host: Host, vm: VmSettings) -> list[Check]:
    """The GVT-g type exists with a free instance, and the mediated device is created."""
    gpu = vm.gpu
    types_dir = host.pci(gpu.address) + "/mdev_supported_types"
    types = host.entries(types_dir)
    if gpu.mdev_type not in types:
        found = ", ".join(types) or "none"
        return [
            Check(
                name="gvtg-type",
                status=Status.FAIL,
                detail=f"type {gpu.mdev_type} not offered (found: {found})",
                fix="GVT-g covers Broadwell to Comet Lake only (not Haswell); boot with "
                "i915.enable_gvt=1 and modprobe kvmgt",
            )
        ]
    available = host.read(f"{types_dir}/{gpu.mdev_type}/available_instances", "0")
    checks = [Check(name="gvtg-type", status=Status.PASS, detail=f"{available} free")]
    if host.path(f"/sys/bus/mdev/devices/{gpu.mdev_uuid}").exists():
        checks.append(Check(name="mdev-device", status=Status.PASS, detail=gpu.mdev_uuid))
    else:
        create = host.path(f"{types_dir}/{gpu.mdev_type}/create")
        checks.append(
            Check(
                name="mdev-device",
                status=Status.FAIL,
                detail=f"mediated device {gpu.mdev_uuid} does not exist",
                fix=f"echo {gpu.mdev_uuid} > {create.relative_to(host.root).as_posix()}"
                " (as root; or define it with virsh nodedev-define)",
            )
        )
    return checks


def check_sriov(host: Host, vm: VmSettings) -> Check:
    """The SR-IOV virtual function the config names exists."""
    address = vm.gpu.address
    pf = address[:-1] + "0"
    if host.path(host.pci(address)).exists():
        return Check(name="sriov-vf", status=Status.PASS, detail=f"{address} exists")
    numvfs = host.read(host.pci(pf) + "/sriov_numvfs", "0")
    return Check(
        name="sriov-vf",
        status=Status.FAIL,
        detail=f"{address} missing; {pf} has {numvfs} VF(s)",
        fix=f"echo 1 > /sys/bus/pci/devices/{pf}/sriov_numvfs (i915 with SR-IOV support)",
    )


def check_hugepages(host: Host, vm: VmSettings) -> Check:
    """Enough free hugepages back the guest's memory."""
    free_mib = 0
    for size_dir in host.entries("/sys/kernel/mm/hugepages"):
        size_kib = int(size_dir.removeprefix("hugepages-").removesuffix("kB") or 0)
        free = int(host.read(f"/sys/kernel/mm/hugepages/{size_dir}/free_hugepages", "0") or 0)
        free_mib += free * size_kib // 1024
    if free_mib >= vm.memory_mib:
        return Check(name="hugepages", status=Status.PASS, detail=f"{free_mib} MiB free")
    pages = vm.memory_mib // 2
    return Check(
        name="hugepages",
        status=Status.FAIL,
        detail=f"{free_mib} MiB of hugepages free, the VM needs {vm.memory_mib} MiB",
        fix=f"sysctl vm.nr_hugepages={pages} (or hugepages={pages} on the kernel command line)",
    )


def check_usb(host: Host, vm: VmSettings) -> list[Check]:
    """Each configured USB device is plugged in."""
    present = set()
    for dev in host.entries("/sys/bus/usb/devices"):
        base = f"/sys/bus/usb/devices/{dev}"
        present.add((host.read(base + "/idVendor"), host.read(base + "/idProduct")))
    checks = []
    for usb in vm.usb:
        ids = f"{usb.vendor.removeprefix('0x')}:{usb.product.removeprefix('0x')}"
        name = f"usb {ids}"
        if (usb.vendor.removeprefix("0x"), usb.product.removeprefix("0x")) in present:
            checks.append(Check(name=name, status=Status.PASS, detail=usb.label or "present"))
            continue
        checks.append(
            Check(
                name=name,
                status=Status.FAIL if usb.required else Status.WARN,
                detail=f"{usb.label or 'USB device'} not plugged in",
                fix="plug it in; lsusb shows what the host sees",
            )
        )
    return checks


def check_libvirt(facts: LibvirtFacts, *, passthrough: bool = True) -> list[Check]:
    """libvirt answers and, when the VM passes a PCI device through, its domain
    capabilities offer the vfio PCI backend."""
    if facts.error:
        fix = "start libvirtd (systemctl enable --now libvirtd) or fix host.libvirt_uri"
        if "Permission denied" in facts.error or "authentication unavailable" in facts.error:
            fix = (
                "qemu:///system's socket is for root and the libvirt group: add the agent's "
                "user to the libvirt group (sudo adduser kamado libvirt; the unit has "
                "SupplementaryGroups=libvirt, a login shell needs a new login)"
            )
        return [Check(name="libvirt", status=Status.FAIL, detail=facts.error, fix=fix)]
    checks = [Check(name="libvirt", status=Status.PASS, detail="connected")]
    if not passthrough:
        return checks  # a VM without host devices (gpu kind none) needs no vfio
    if facts.domain_capabilities is None:
        checks.append(
            Check(name="libvirt-vfio", status=Status.WARN, detail="no domain capabilities")
        )
        return checks
    backends = [
        v.text or ""
        # The local libvirt wrote this XML; it is not untrusted input.
        for v in ET.fromstring(facts.domain_capabilities).iterfind(  # noqa: S314
            "devices/hostdev/enum[@name='pciBackend']/value"
        )
    ]
    if "vfio" in backends:
        checks.append(Check(name="libvirt-vfio", status=Status.PASS, detail="vfio backend"))
    else:
        checks.append(
            Check(
                name="libvirt-vfio",
                status=Status.FAIL,
                detail=f"PCI passthrough backends: {', '.join(backends) or 'none'}",
                fix="libvirt offers vfio only with the IOMMU on and the vfio modules loaded",
            )
        )
    return checks


def device_checks(host: Host, vm: VmSettings) -> list[Check]:
    """Each extra PCI device exists; neither it nor the iGPU is something the host uses."""
    checks = []
    for pci in vm.pci:
        label = pci.label or "PCI device"
        checks.append(check_pci_device(host, pci.address, label))
        if host.path(host.pci(pci.address)).exists():
            checks.append(check_host_use(host, pci.address, label))
    if vm.gpu.kind in ("pci", "sriov") and host.path(host.pci(vm.gpu.address)).exists():
        checks.append(check_host_use(host, vm.gpu.address, "iGPU", warn_bound=False))
    return checks


def run_preflight(
    settings: HostSettings, root: Path = Path("/"), libvirt: LibvirtProbe | None = None
) -> Report:
    """Every check that applies to this config, in a fixed order."""
    host = Host(root)
    vm = settings.vm
    checks = [check_cpu(host, vm)]
    passed = {d.address for d in vm.pci}
    if vm.gpu.kind in ("pci", "sriov"):
        passed.add(vm.gpu.address)
    needs_iommu = bool(passed) or vm.gpu.kind == "gvtg"
    if needs_iommu:
        checks += [check_iommu(host), check_vfio(host)]
    gpu_present = host.path(host.pci(vm.gpu.address)).exists()
    if vm.gpu.kind != "none":
        gpu_check = check_pci_device(host, vm.gpu.address, "iGPU", vm.gpu.expected_vendor)
        checks.append(gpu_check)
        # A wrong address must not earn advice about that device (binding the host's NIC).
        gpu_present = gpu_present and gpu_check.status != Status.FAIL
    if vm.gpu.kind == "pci" and gpu_present:
        checks += [check_gpu_driver(host, vm), check_boot_vga(host, vm.gpu.address)]
    elif vm.gpu.kind == "gvtg":
        checks += [check_gpu_driver(host, vm), *check_gvtg(host, vm)]
    elif vm.gpu.kind == "sriov":
        checks.append(check_sriov(host, vm))
    checks += device_checks(host, vm)
    for address in sorted(passed):
        if host.path(host.pci(address)).exists():
            checks.append(check_group(host, address, passed))
    if vm.hugepages:
        checks.append(check_hugepages(host, vm))
    checks += check_usb(host, vm)
    if libvirt is not None:
        checks += check_libvirt(libvirt(), passthrough=bool(passed))
    return Report(checks=checks)
