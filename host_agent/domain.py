"""The libvirt domain XML of the passthrough VM, built from the `[host.vm]` config.

The tree is built with ElementTree so no config value is ever pasted into markup. QEMU
properties libvirt has no XML for (x-vga, x-igd-opregion) go through ``qemu:override``
on a device whose alias starts with ``ua-``: libvirt keeps only user aliases with that
prefix, and ``-set device.hostdev0.x-vga=on`` no longer works with JSON ``-device``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from worker.settings.host import GpuSettings, VmSettings

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
IGPU_ALIAS = "ua-igpu"

ET.register_namespace("qemu", QEMU_NS)


def _q(tag: str) -> str:
    return f"{{{QEMU_NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def pci_source(parent: ET.Element, address: str) -> None:
    """Append <address domain= bus= slot= function=/> for 0000:00:02.0."""
    domain, bus, rest = address.split(":")
    slot, function = rest.split(".")
    _sub(
        parent,
        "address",
        domain=f"0x{domain}",
        bus=f"0x{bus}",
        slot=f"0x{slot}",
        function=f"0x{function}",
    )


def _pci_hostdev(devices: ET.Element, address: str, alias: str) -> ET.Element:
    hostdev = _sub(devices, "hostdev", mode="subsystem", type="pci", managed="yes")
    # Explicit: libvirt 9 resolves "default" only at start, so domxml-to-native needs it.
    _sub(hostdev, "driver", name="vfio")
    pci_source(_sub(hostdev, "source"), address)
    _sub(hostdev, "alias", name=alias)
    return hostdev


def _os(domain: ET.Element, vm: VmSettings) -> None:
    os_el = _sub(domain, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=vm.machine)
    boot = vm.boot
    if boot.kernel is not None:
        _sub(os_el, "kernel", str(boot.kernel))
        if boot.initrd is not None:
            _sub(os_el, "initrd", str(boot.initrd))
        if boot.cmdline:
            _sub(os_el, "cmdline", boot.cmdline)
    elif boot.disk is not None:
        _sub(os_el, "boot", dev="hd")


def _features(domain: ET.Element, vm: VmSettings) -> None:
    features = _sub(domain, "features")
    # ACPI lets a graceful shutdown reach the guest; without it a guest poweroff reboots.
    _sub(features, "acpi")
    _sub(features, "apic")
    if vm.cpu.kvm_hidden:
        _sub(_sub(features, "kvm"), "hidden", state="on")


def _cpu(domain: ET.Element, vm: VmSettings) -> None:
    cpu = vm.cpu
    if cpu.model == "host-passthrough":
        element = _sub(domain, "cpu", mode="host-passthrough", check=cpu.check)
    else:
        element = _sub(domain, "cpu", mode="custom", match="exact", check=cpu.check)
        _sub(element, "model", cpu.model, fallback="forbid")
    for feature in cpu.features:
        policy = "disable" if feature.startswith("-") else "require"
        _sub(element, "feature", policy=policy, name=feature.lstrip("+-"))


def _disk_and_fs(devices: ET.Element, vm: VmSettings) -> None:
    boot = vm.boot
    if boot.disk is not None:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=boot.disk_format)
        _sub(disk, "source", file=str(boot.disk))
        target = {"virtio": "vda", "sata": "sda", "scsi": "sda"}[boot.disk_bus]
        _sub(disk, "target", dev=target, bus=boot.disk_bus)
    for shared in vm.shared_dirs:
        fs = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
        _sub(fs, "source", dir=str(shared.source))
        _sub(fs, "target", dir=shared.target)
        if shared.readonly:
            _sub(fs, "readonly")


def _network(devices: ET.Element, vm: VmSettings) -> None:
    net = vm.network
    if net.type == "none":
        return
    iface = _sub(devices, "interface", type=net.type)
    if net.mac:
        _sub(iface, "mac", address=net.mac)
    if net.type == "network":
        _sub(iface, "source", network=net.source)
    elif net.type == "bridge":
        _sub(iface, "source", bridge=net.source)
    _sub(iface, "model", type=net.model)


def _console_and_channel(devices: ET.Element, vm: VmSettings) -> None:
    if vm.serial_log is not None:
        serial = _sub(devices, "serial", type="file")
        # Appended: the console of the boot that crashed survives the restart after it.
        _sub(serial, "source", path=str(vm.serial_log), append="on")
        _sub(serial, "target", port="0")
    else:
        _sub(_sub(devices, "serial", type="pty"), "target", port="0")
    if vm.guest_agent_channel:
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)


def _gpu(devices: ET.Element, gpu: GpuSettings) -> dict[str, dict[str, str]]:
    """Add the iGPU; return the QEMU properties to override, by device alias."""
    overrides: dict[str, dict[str, str]] = {}
    if gpu.kind == "gvtg":
        hostdev = _sub(
            devices, "hostdev", mode="subsystem", type="mdev", model="vfio-pci", display="off"
        )
        _sub(_sub(hostdev, "source"), "address", uuid=gpu.mdev_uuid)
        return overrides
    if gpu.kind == "sriov":
        _pci_hostdev(devices, gpu.address, IGPU_ALIAS)
        return overrides
    if gpu.kind == "none":
        return overrides
    hostdev = _pci_hostdev(devices, gpu.address, IGPU_ALIAS)
    props: dict[str, str] = {}
    if gpu.x_vga:
        props["x-vga"] = "true"
    if gpu.igd_mode == "legacy":
        # Legacy IGD assignment needs the device at guest 00:02.0 on i440fx, its VGA ROM
        # and the OpRegion, and no emulated VGA competing for the legacy ranges.
        if gpu.rom_file is not None:
            _sub(hostdev, "rom", file=str(gpu.rom_file))
        _sub(
            hostdev, "address", type="pci", domain="0x0000", bus="0x00", slot="0x02", function="0x0"
        )
        _sub(_sub(devices, "video"), "model", type="none")
        if gpu.opregion:
            props["x-igd-opregion"] = "true"
    if props:
        overrides[IGPU_ALIAS] = props
    return overrides


def _passthrough(devices: ET.Element, vm: VmSettings) -> None:
    if vm.usb:
        # xHCI: the default UHCI on i440fx is USB 1.1, too slow for a TV tuner's stream.
        _sub(devices, "controller", type="usb", index="0", model="qemu-xhci")
    for index, usb in enumerate(vm.usb, start=1):
        hostdev = _sub(devices, "hostdev", mode="subsystem", type="usb", managed="yes")
        source = _sub(hostdev, "source")
        _sub(source, "vendor", id=usb.vendor)
        _sub(source, "product", id=usb.product)
        _sub(hostdev, "alias", name=f"ua-usb{index}")
    for index, pci in enumerate(vm.pci, start=1):
        _pci_hostdev(devices, pci.address, f"ua-pci{index}")


def _qemu_extras(domain: ET.Element, vm: VmSettings, overrides: dict[str, dict[str, str]]) -> None:
    if vm.qemu_args:
        commandline = _sub(domain, _q("commandline"))
        for arg in vm.qemu_args:
            _sub(commandline, _q("arg"), value=arg)
    if overrides:
        override = _sub(domain, _q("override"))
        for alias, props in overrides.items():
            frontend = _sub(_sub(override, _q("device"), alias=alias), _q("frontend"))
            for name, value in props.items():
                _sub(frontend, _q("property"), name=name, type="bool", value=value)


def build_domain(vm: VmSettings) -> ET.Element:
    """The <domain> element for this VM."""
    domain = ET.Element("domain", type=vm.domain_type)
    _sub(domain, "name", vm.name)
    _sub(domain, "description", "passthrough encoder VM managed by the kamado host agent")
    _sub(domain, "memory", str(vm.memory_mib), unit="MiB")
    _sub(domain, "currentMemory", str(vm.memory_mib), unit="MiB")
    if vm.hugepages:
        _sub(_sub(domain, "memoryBacking"), "hugepages")
    _sub(domain, "vcpu", str(vm.vcpus), placement="static")
    _os(domain, vm)
    _features(domain, vm)
    _cpu(domain, vm)
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", vm.on_reboot)
    # A crash ends the domain so the agent restarts it with back-off and a limit.
    _sub(domain, "on_crash", "destroy")
    devices = _sub(domain, "devices")
    if vm.emulator is not None:
        _sub(devices, "emulator", str(vm.emulator))
    _disk_and_fs(devices, vm)
    _network(devices, vm)
    _console_and_channel(devices, vm)
    overrides = _gpu(devices, vm.gpu)
    _passthrough(devices, vm)
    # Guest memory is pinned for VFIO DMA, so a balloon can never reclaim any.
    _sub(devices, "memballoon", model="none")
    _qemu_extras(domain, vm, overrides)
    return domain


def domain_xml(vm: VmSettings) -> str:
    """The domain XML as text, indented, ready for virDomainDefineXML."""
    domain = build_domain(vm)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def with_uuid(xml: str, uuid: str) -> str:
    """The same domain XML carrying ``uuid``, so redefining updates rather than conflicts."""
    # Our own XML, from domain_xml; not untrusted input.
    domain = ET.fromstring(xml)  # noqa: S314
    for old in domain.findall("uuid"):
        domain.remove(old)
    element = ET.Element("uuid")
    element.text = uuid
    domain.insert(1, element)
    return ET.tostring(domain, encoding="unicode") + "\n"
