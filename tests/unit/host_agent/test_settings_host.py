"""The [host] config section: defaults, the original recipe, and errors that name the field."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings.host import HostSettings, parse_window
from worker.settings.model import load_settings

RECIPE = Path(__file__).parents[3] / "deploy" / "host.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kamado.toml"
    path.write_text(text)
    return path


def test_defaults_serve_the_gpu_queue_through_the_system_libvirt() -> None:
    host = HostSettings()
    assert host.queues == ["encode.gpu"]
    assert host.libvirt_uri == "qemu:///system"
    assert host.vm.machine == "q35"
    assert host.vm.gpu.address == "0000:00:02.0"
    assert host.guest_worker == "celery@kamado-gpu", "the worker's heartbeat is its node name"


def test_guest_hostname_is_a_hostname_or_a_full_node_name() -> None:
    assert HostSettings(guest_hostname="gpu-vm").guest_worker == "celery@gpu-vm"
    assert HostSettings(guest_hostname="enc@gpu-vm").guest_worker == "enc@gpu-vm"


def test_example_config_is_the_original_xeon_recipe() -> None:
    settings = load_settings(RECIPE)
    vm = settings.host.vm
    assert (vm.machine, vm.cpu.model, vm.cpu.features) == ("q35", "Haswell", ["+x2apic"])
    assert vm.cpu.kvm_hidden and vm.gpu.x_vga
    assert vm.gpu.address == "0000:00:02.0"


def test_short_pci_address_gets_domain_zero(tmp_path: Path) -> None:
    path = write(tmp_path, '[[host.vm.pci]]\naddress = "01:00.0"\n')
    assert load_settings(path).host.vm.pci[0].address == "0000:01:00.0"


def test_misspelt_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[host.vm]\nmemroy_mib = 2048\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "host.vm.memroy_mib: unknown key" in str(info.value)


def test_bad_pci_address_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[host.vm.gpu]\naddress = "00:02"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "host.vm.gpu.address" in str(info.value)
    assert "not a PCI address" in str(info.value)


def test_legacy_igd_mode_needs_the_i440fx_machine(tmp_path: Path) -> None:
    path = write(tmp_path, '[host.vm.gpu]\nigd_mode = "legacy"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "machine = 'pc'" in str(info.value)


def test_gvtg_without_a_uuid_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[host.vm.gpu]\nkind = "gvtg"\n')
    with pytest.raises(ConfigError, match="mdev_uuid"):
        load_settings(path)


def test_same_pci_device_passed_twice_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[host.vm.pci]]\naddress = "0000:00:02.0"\n')
    with pytest.raises(ConfigError, match=r"passed through twice: 0000:00:02\.0"):
        load_settings(path)


def test_initrd_without_kernel_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[host.vm.boot]\ninitrd = "/boot/initrd.img"\n')
    with pytest.raises(ConfigError, match="need kernel"):
        load_settings(path)


def test_bad_power_window_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[host]\npower_windows = ["1am-7am"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "host.power_windows" in str(info.value)


def test_usb_ids_are_normalised_to_lowercase_hex() -> None:
    host = HostSettings.model_validate({"vm": {"usb": [{"vendor": "0511", "product": "0x004A"}]}})
    assert (host.vm.usb[0].vendor, host.vm.usb[0].product) == ("0x0511", "0x004a")


def test_power_window_wrapping_midnight_contains_both_sides() -> None:
    window = parse_window("22:00-06:00")
    assert window.contains(time(23, 30)) and window.contains(time(5, 59))
    assert not window.contains(time(6, 0)) and not window.contains(time(12, 0))


def test_power_window_may_end_at_midnight() -> None:
    window = parse_window("18:00-24:00")
    assert window.contains(time(23, 59)) and not window.contains(time(0, 0))


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[host]\nidle_shutdown = 60\n")
    monkeypatch.setenv("KAMADO_HOST__IDLE_SHUTDOWN", "120")
    assert load_settings(path).host.idle_shutdown == 120
