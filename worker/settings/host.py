"""The `[host]` config section: the KVM host agent and its passthrough VM."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from worker.settings.base import Section

__all__ = ["GpuSettings", "HostSettings", "VmSettings"]

PCI_ADDRESS = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
USB_ID = re.compile(r"^(?:0x)?[0-9a-fA-F]{4}$")
WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
CPU_FEATURE = re.compile(r"^[+-]?[a-z0-9_.-]+$")


def normalise_pci(value: str) -> str:
    """A PCI address as libvirt and sysfs spell it: 0000:00:02.0 (domain added if missing)."""
    match = PCI_ADDRESS.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a PCI address like 0000:00:02.0 or 00:02.0")
    domain, bus, slot, function = match.groups()
    return f"{(domain or '0000').lower()}:{bus.lower()}:{slot.lower()}.{function}"


class CpuSettings(Section):
    """The guest CPU: a named model with features, and whether KVM is hidden."""

    model: str = Field(
        default="host-passthrough",
        description="a QEMU CPU model (Haswell, Skylake-Client, ...) or host-passthrough",
    )
    features: list[str] = Field(
        default_factory=list,
        description="+name requires a feature, -name disables it (e.g. +x2apic)",
    )
    check: Literal["none", "partial", "full"] = Field(
        default="partial",
        description="how strictly libvirt checks the model; none under TCG (no hle/rtm)",
    )
    kvm_hidden: bool = Field(
        default=True, description="hide the KVM signature (kvm=off), as the original recipe did"
    )

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str]) -> list[str]:
        for feature in value:
            if not CPU_FEATURE.match(feature):
                raise ValueError(f"{feature!r} is not a CPU feature like +x2apic or -hle")
        return value


class BootSettings(Section):
    """How the guest boots: a disk image, or a kernel and initrd directly (no disk needed)."""

    disk: Path | None = Field(default=None, description="the guest's boot disk image")
    disk_format: Literal["qcow2", "raw"] = "qcow2"
    disk_bus: Literal["virtio", "sata", "scsi"] = "virtio"
    kernel: Path | None = Field(default=None, description="direct kernel boot: the kernel")
    initrd: Path | None = None
    cmdline: str = ""

    @model_validator(mode="after")
    def _kernel_for_initrd(self) -> BootSettings:
        if (self.initrd or self.cmdline) and self.kernel is None:
            raise ValueError("initrd and cmdline need kernel (direct kernel boot)")
        return self


class NetworkSettings(Section):
    """The guest's network interface."""

    type: Literal["network", "bridge", "user", "none"] = Field(
        default="network",
        description="a libvirt network, a host bridge, QEMU user-mode networking, or none",
    )
    source: str = Field(default="default", description="network or bridge name")
    model: str = "virtio"
    mac: str = Field(default="", description="fixed MAC address; empty lets libvirt choose")

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        if value and not re.match(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$", value):
            raise ValueError(f"{value!r} is not a MAC address like 52:54:00:12:34:56")
        return value.lower()


class GpuSettings(Section):
    """The Intel iGPU given to the guest: the whole device, a GVT-g slice, or an SR-IOV VF."""

    kind: Literal["pci", "gvtg", "sriov", "none"] = Field(
        default="pci",
        description=(
            "pci passes the whole iGPU (any generation, the original recipe); gvtg a mediated "
            "device (Broadwell to Comet Lake); sriov a virtual function (Gen12+)"
        ),
    )
    address: str = Field(
        default="0000:00:02.0",
        description="the iGPU's PCI address; for sriov the VF's address (e.g. 0000:00:02.1)",
    )
    igd_mode: Literal["upt", "legacy"] = Field(
        default="upt",
        description=(
            "upt: universal passthrough, any machine, the guest sees a secondary GPU; "
            "legacy: i440fx (machine pc), guest address 00:02.0, VGA ROM and OpRegion"
        ),
    )
    x_vga: bool = Field(
        default=True, description="x-vga=on on the vfio-pci device (the original recipe)"
    )
    rom_file: Path | None = Field(default=None, description="VGA BIOS ROM (legacy mode)")
    opregion: bool = Field(default=True, description="x-igd-opregion=on in legacy mode")
    mdev_type: str = Field(default="i915-GVTg_V5_4", description="GVT-g type (gvtg only)")
    mdev_uuid: str = Field(default="", description="the mediated device's UUID (gvtg only)")
    expected_vendor: str = Field(default="0x8086", description="what preflight expects")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normalise_pci(value)

    @field_validator("mdev_uuid")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if value and not UUID.match(value.lower()):
            raise ValueError(f"{value!r} is not a UUID")
        return value.lower()

    @model_validator(mode="after")
    def _gvtg_needs_uuid(self) -> GpuSettings:
        if self.kind == "gvtg" and not self.mdev_uuid:
            raise ValueError("kind = 'gvtg' needs mdev_uuid (the mediated device to attach)")
        return self


class UsbDevice(Section):
    """A USB device passed to the guest by vendor and product id (a TV tuner, say)."""

    vendor: str = Field(description="vendor id, e.g. 0x0511")
    product: str = Field(description="product id, e.g. 0x0029")
    label: str = ""
    required: bool = Field(default=False, description="fail preflight when it is unplugged")

    @field_validator("vendor", "product")
    @classmethod
    def _usb_id(cls, value: str) -> str:
        if not USB_ID.match(value):
            raise ValueError(f"{value!r} is not a USB id like 0x0511")
        return "0x" + value.lower().removeprefix("0x")


class PciDevice(Section):
    """An extra PCI device passed to the guest (a PCIe tuner card, say)."""

    address: str
    label: str = ""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normalise_pci(value)


class SharedDir(Section):
    """A host directory shared with the guest over 9p (recordings, or a test's root)."""

    source: Path
    target: str = Field(description="the mount tag the guest uses")
    readonly: bool = True


class VmSettings(Section):
    """The passthrough VM the host agent defines, starts and stops."""

    name: str = "kamado-gpu"
    domain_type: Literal["kvm", "qemu"] = Field(
        default="kvm", description="kvm on a VT-x host; qemu (TCG) only to test without KVM"
    )
    memory_mib: int = Field(default=4096, ge=256)
    vcpus: int = Field(default=2, ge=1, le=256)
    machine: Literal["q35", "pc"] = "q35"
    hugepages: bool = Field(default=False, description="back guest memory with hugepages")
    emulator: Path | None = Field(default=None, description="QEMU binary; empty: libvirt's")
    cpu: CpuSettings = CpuSettings()
    boot: BootSettings = BootSettings()
    network: NetworkSettings = NetworkSettings()
    gpu: GpuSettings = GpuSettings()
    usb: list[UsbDevice] = Field(default_factory=list)
    pci: list[PciDevice] = Field(default_factory=list)
    shared_dirs: list[SharedDir] = Field(default_factory=list)
    guest_agent_channel: bool = Field(default=True, description="a qemu-guest-agent channel")
    serial_log: Path | None = Field(default=None, description="write the serial console here")
    on_reboot: Literal["restart", "destroy"] = "restart"
    qemu_args: list[str] = Field(
        default_factory=list,
        description="extra QEMU arguments, one list item each (qemu:commandline)",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits and _ . + - (at most 64)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VmSettings:
        if self.gpu.kind == "pci" and self.gpu.igd_mode == "legacy" and self.machine != "pc":
            raise ValueError("gpu.igd_mode = 'legacy' needs machine = 'pc' (i440fx)")
        if self.gpu.kind != "pci" and self.gpu.igd_mode == "legacy":
            raise ValueError("gpu.igd_mode = 'legacy' applies only to gpu.kind = 'pci'")
        passed = [d.address for d in self.pci]
        if self.gpu.kind in ("pci", "sriov"):
            passed.append(self.gpu.address)
        duplicates = sorted({a for a in passed if passed.count(a) > 1})
        if duplicates:
            raise ValueError(f"PCI device passed through twice: {', '.join(duplicates)}")
        return self


class PowerWindow(Section):
    """A daily time range (local time) in which the VM may run; it may wrap midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """True when the wall-clock time falls inside this window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def parse_window(text: str) -> PowerWindow:
    """Parse "01:00-07:00" (24:00 allowed as an end) into a PowerWindow."""
    match = WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a window like 01:00-07:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
    if (h2, m2) == (h1, m1):
        raise ValueError(f"{text!r}: start and end are the same")
    return PowerWindow(start=time(h1, m1), end=end)


class HostSettings(Section):
    """The host agent: which VM it runs, for which queues, and when it may power it."""

    libvirt_uri: str = Field(default="qemu:///system", description="where the VM lives")
    agent_name: str = Field(
        default="", description="name of this host's heartbeat; empty: the machine's hostname"
    )
    queues: list[str] = Field(default_factory=lambda: ["encode.gpu"])
    guest_hostname: str = Field(
        default="",
        description="the VM's worker: its Celery node name (celery@HOST), or the guest's "
        "hostname HOST; empty: celery@<vm.name>",
    )
    poll_interval: float = Field(default=1.0, gt=0, le=60, description="seconds")
    idle_shutdown: float = Field(
        default=900.0, ge=0, description="seconds with no work and no running job before shutdown"
    )
    shutdown_timeout: float = Field(
        default=120.0, gt=0, description="seconds for an ACPI shutdown before destroy"
    )
    consume_timeout: float = Field(
        default=600.0,
        ge=0,
        description="seconds after a start for the guest's worker to consume the queues while "
        "jobs wait; then the VM is shut down and started for work again only after a hold "
        "(this long, doubling, at most 6 h); 0: wait forever",
    )
    restart_backoff: float = Field(default=5.0, ge=0, description="first restart delay, seconds")
    restart_backoff_max: float = Field(default=300.0, ge=0, description="seconds")
    restart_limit: int = Field(
        default=5, ge=0, description="restarts within restart_window before the agent gives up"
    )
    restart_window: float = Field(default=3600.0, gt=0, description="seconds")
    heartbeat_interval: float = Field(default=5.0, gt=0, le=300, description="seconds")
    power_windows: list[str] = Field(
        default_factory=list,
        description='local times the VM may run, e.g. ["01:00-07:00"]; empty: always',
    )
    busy_load: float | None = Field(
        default=None,
        gt=0,
        description="do not start the VM while the host's 1-minute load average is above this",
    )
    vm: VmSettings = VmSettings()

    @field_validator("power_windows")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_window(text)
        return value

    @field_validator("queues")
    @classmethod
    def _queues(cls, value: list[str]) -> list[str]:
        if not value or any(not q.strip() for q in value):
            raise ValueError("name at least one queue, none empty")
        return value

    @property
    def windows(self) -> list[PowerWindow]:
        """The parsed power windows."""
        return [parse_window(text) for text in self.power_windows]

    @property
    def guest_worker(self) -> str:
        """The Celery node name whose heartbeat tells whether the VM is encoding.

        A worker's heartbeat is keyed by its node name, ``celery@<hostname>`` unless
        ``worker.hostname`` in the guest names another; a bare hostname gets ``celery@``.
        """
        name = self.guest_hostname or self.vm.name
        return name if "@" in name else f"celery@{name}"
