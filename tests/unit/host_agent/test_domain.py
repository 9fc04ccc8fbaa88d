"""The domain XML built from config: the original recipe and its alternatives."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from host_agent.domain import QEMU_NS, domain_xml
from worker.settings.host import VmSettings
from worker.settings.model import load_settings

RECIPE = Path(__file__).parents[3] / "deploy" / "host.example.toml"
Q = f"{{{QEMU_NS}}}"


def parse(vm: VmSettings) -> ET.Element:
    return ET.fromstring(domain_xml(vm))


def vm_of(**data: Any) -> VmSettings:
    return VmSettings.model_validate(data)


def overrides(root: ET.Element) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for device in root.iterfind(f"{Q}override/{Q}device"):
        props = device.iterfind(f"{Q}frontend/{Q}property")
        found[device.get("alias", "")] = {p.get("name", ""): p.get("value", "") for p in props}
    return found


def test_original_recipe_is_q35_haswell_with_x2apic_and_kvm_hidden() -> None:
    root = parse(load_settings(RECIPE).host.vm)
    assert root.get("type") == "kvm"
    assert root.find("os/type").get("machine") == "q35"  # type: ignore[union-attr]
    assert root.findtext("cpu/model") == "Haswell"
    feature = root.find("cpu/feature")
    assert feature is not None and feature.attrib == {"policy": "require", "name": "x2apic"}
    assert root.find("features/kvm/hidden").get("state") == "on"  # type: ignore[union-attr]


def test_igpu_is_a_vfio_hostdev_with_x_vga_through_a_ua_alias() -> None:
    root = parse(load_settings(RECIPE).host.vm)
    igpu = next(
        h for h in root.iterfind("devices/hostdev") if h.find("alias[@name='ua-igpu']") is not None
    )
    address = igpu.find("source/address")
    assert address is not None
    assert address.attrib == {"domain": "0x0000", "bus": "0x00", "slot": "0x02", "function": "0x0"}
    assert igpu.find("driver").get("name") == "vfio"  # type: ignore[union-attr]
    assert overrides(root) == {"ua-igpu": {"x-vga": "true"}}


def with_devices(vm: VmSettings) -> VmSettings:
    """The recipe plus a USB stick and a PCIe card, as a VM that needs them would list."""
    usb = [{"vendor": "0x0511", "product": "0x0045", "label": "USB ISDB-T tuner"}]
    pci = [{"address": "0000:01:00.0", "label": "PCIe card"}]
    return VmSettings.model_validate(vm.model_dump() | {"usb": usb, "pci": pci})


def test_the_example_vm_gets_the_igpu_and_no_device_the_layout_does_not_need() -> None:
    vm = load_settings(RECIPE).host.vm
    assert (vm.usb, vm.pci) == ([], [])
    root = parse(vm)
    assert [h.get("type") for h in root.iterfind("devices/hostdev")] == ["pci"]


def test_usb_device_is_passed_by_vendor_and_product_on_xhci() -> None:
    root = parse(with_devices(load_settings(RECIPE).host.vm))
    usb = root.find("devices/hostdev[@type='usb']")
    assert usb is not None
    assert usb.find("source/vendor").get("id") == "0x0511"  # type: ignore[union-attr]
    assert usb.find("source/product").get("id") == "0x0045"  # type: ignore[union-attr]
    assert root.find("devices/controller[@type='usb']").get("model") == "qemu-xhci"  # type: ignore[union-attr]


def test_extra_pci_card_gets_its_own_hostdev() -> None:
    root = parse(with_devices(load_settings(RECIPE).host.vm))
    buses = [a.get("bus") for a in root.iterfind("devices/hostdev[@type='pci']/source/address")]
    assert buses == ["0x00", "0x01"]


def test_legacy_mode_puts_the_igpu_at_guest_00_02_0_with_rom_and_opregion() -> None:
    vm = vm_of(machine="pc", gpu={"igd_mode": "legacy", "rom_file": "/var/lib/kamado/igd.rom"})
    root = parse(vm)
    igpu = root.find("devices/hostdev")
    assert igpu is not None
    guest = igpu.find("address")
    assert guest is not None and (guest.get("bus"), guest.get("slot")) == ("0x00", "0x02")
    assert igpu.find("rom").get("file") == "/var/lib/kamado/igd.rom"  # type: ignore[union-attr]
    assert root.find("devices/video/model").get("type") == "none"  # type: ignore[union-attr]
    assert overrides(root) == {"ua-igpu": {"x-vga": "true", "x-igd-opregion": "true"}}


def test_gvtg_attaches_the_mediated_device_by_uuid_without_overrides() -> None:
    uuid = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525"
    root = parse(vm_of(gpu={"kind": "gvtg", "mdev_uuid": uuid}))
    mdev = root.find("devices/hostdev[@type='mdev']")
    assert mdev is not None and mdev.get("model") == "vfio-pci"
    assert mdev.find("source/address").get("uuid") == uuid  # type: ignore[union-attr]
    assert overrides(root) == {}


def test_sriov_passes_the_virtual_function_without_x_vga() -> None:
    root = parse(vm_of(gpu={"kind": "sriov", "address": "0000:00:02.1"}))
    address = root.find("devices/hostdev/source/address")
    assert address is not None and address.get("function") == "0x1"
    assert overrides(root) == {}


def test_direct_kernel_boot_needs_no_disk() -> None:
    root = parse(vm_of(boot={"kernel": "/k/vmlinuz", "initrd": "/k/initrd", "cmdline": "a=b c"}))
    assert root.findtext("os/kernel") == "/k/vmlinuz"
    assert root.findtext("os/cmdline") == "a=b c"
    assert root.find("devices/disk") is None


def test_values_with_markup_characters_stay_text() -> None:
    cmdline = """console=ttyS0 note="a<b & 'c'" </cmdline><evil/>"""
    root = parse(vm_of(boot={"kernel": "/k/vm linuz", "cmdline": cmdline}, gpu={"kind": "none"}))
    assert root.findtext("os/cmdline") == cmdline
    assert root.find("os/evil") is None


def test_qemu_args_become_one_arg_element_each() -> None:
    args = ["-netdev", "user,id=kn0,restrict=on"]
    root = parse(vm_of(qemu_args=args, gpu={"kind": "none"}))
    assert [a.get("value") for a in root.iterfind(f"{Q}commandline/{Q}arg")] == args


def test_guest_agent_channel_and_no_balloon() -> None:
    root = parse(vm_of())
    channel = root.find("devices/channel/target")
    assert channel is not None and channel.get("name") == "org.qemu.guest_agent.0"
    assert root.find("devices/memballoon").get("model") == "none"  # type: ignore[union-attr]


def test_crash_ends_the_domain_so_the_agent_decides_about_restarts() -> None:
    root = parse(vm_of())
    assert root.findtext("on_crash") == "destroy"
    assert root.find("features/acpi") is not None
