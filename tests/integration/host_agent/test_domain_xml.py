"""Every generated XML passes libvirt's schema; the embedded QEMU driver shows the real argv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from host_agent.domain import domain_xml
from host_agent.lifecycle import Hypervisor
from tests.integration.host_agent.conftest import validate_xml
from worker.settings.host import VmSettings
from worker.settings.model import load_settings

pytestmark = pytest.mark.integration

RECIPE = Path(__file__).parents[3] / "deploy" / "host.example.toml"
UUID = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525"

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "legacy-igd": {
        "machine": "pc",
        "gpu": {"igd_mode": "legacy", "rom_file": "/var/lib/kamado/igd.rom"},
    },
    "gvtg": {"gpu": {"kind": "gvtg", "mdev_uuid": UUID}},
    "sriov": {"gpu": {"kind": "sriov", "address": "0000:00:02.1"}},
    "no-gpu-kernel-boot": {
        "gpu": {"kind": "none"},
        "boot": {"kernel": "/k/vmlinuz", "initrd": "/k/initrd.img", "cmdline": "console=ttyS0"},
        "network": {"type": "user"},
        "qemu_args": ["-netdev", "user,id=kn0,restrict=on"],
        "serial_log": "/var/log/kamado/serial.log",
        "shared_dirs": [{"source": "/", "target": "hostroot"}],
    },
    "bridge-hugepages-passthrough-cpu": {
        "hugepages": True,
        "network": {"type": "bridge", "source": "br0", "mac": "52:54:00:6B:61:6D"},
        "cpu": {"model": "host-passthrough", "kvm_hidden": False},
        "boot": {"disk": "/srv/kamado.img", "disk_format": "raw", "disk_bus": "sata"},
        "usb": [{"vendor": "0511", "product": "0045"}, {"vendor": "0x0bda", "product": "2838"}],
        "guest_agent_channel": False,
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_passes_virt_xml_validate(variant: str, tmp_path: Path) -> None:
    validate_xml(domain_xml(VmSettings.model_validate(VARIANTS[variant])), tmp_path)


def test_original_recipe_passes_virt_xml_validate(tmp_path: Path) -> None:
    validate_xml(domain_xml(load_settings(RECIPE).host.vm), tmp_path)


def tcg(vm: VmSettings) -> VmSettings:
    """The same VM as it can be previewed on a machine without KVM or a tuner."""
    # TCG lacks Haswell's hle/rtm (hence check none); libvirt resolves a USB vendor/product
    # to a bus address on the host, and no tuner is plugged in here.
    cpu = vm.cpu.model_copy(update={"check": "none"})
    return vm.model_copy(update={"domain_type": "qemu", "cpu": cpu, "usb": []})


def test_original_recipe_becomes_the_hand_typed_qemu_command(embedded: Hypervisor) -> None:
    vm = load_settings(RECIPE).host.vm
    card = {"pci": [{"address": "0000:01:00.0", "label": "PCIe card"}]}
    argv = embedded.to_native(domain_xml(tcg(VmSettings.model_validate(vm.model_dump() | card))))
    assert "-machine pc-q35-" in argv
    assert "-cpu Haswell,x2apic=on,kvm=off" in argv
    assert '"driver":"vfio-pci","host":"0000:00:02.0","id":"ua-igpu"' in argv
    igpu = next(part for part in argv.split("-device ") if '"id":"ua-igpu"' in part)
    assert '"x-vga":true' in igpu
    assert '"host":"0000:01:00.0"' in argv, "the extra PCIe card"
    assert "org.qemu.guest_agent.0" in argv


def test_legacy_igd_mode_puts_the_igpu_at_00_02_0_on_i440fx(embedded: Hypervisor) -> None:
    vm = VmSettings.model_validate(VARIANTS["legacy-igd"] | {"cpu": {"model": "Haswell"}})
    argv = embedded.to_native(domain_xml(tcg(vm)))
    assert "-machine pc-i440fx-" in argv
    igpu = next(part for part in argv.split("-device ") if '"id":"ua-igpu"' in part)
    assert '"bus":"pci.0","addr":"0x2"' in igpu
    assert '"x-igd-opregion":true' in igpu and '"x-vga":true' in igpu
    assert '"romfile":"/var/lib/kamado/igd.rom"' in igpu


def test_hiding_kvm_can_be_turned_off(embedded: Hypervisor) -> None:
    vm = VmSettings.model_validate({"cpu": {"model": "Haswell", "kvm_hidden": False}})
    assert "kvm=off" not in embedded.to_native(domain_xml(tcg(vm)))
