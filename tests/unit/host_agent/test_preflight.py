"""Preflight on fixture trees shaped like real VT-d hosts (see sysfs_fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_agent.preflight import LibvirtFacts, Report, Status, run_preflight
from tests.unit.host_agent.sysfs_fixtures import (
    COFFEELAKE_DEVICES,
    ENO1,
    ENO1_ROUTES,
    GVTG_TYPES,
    HASWELL_CMDLINE_OFF,
    HASWELL_DEVICES,
    HASWELL_NVME_ROOT,
    HASWELL_SHARED_GROUP,
    NVME_ADDRESS,
    NVME_ROOT_DISK,
    NVME_ROOT_MOUNTINFO,
    NVME_ROOT_SWAPS,
    USB_TUNER,
    bind,
    build_host,
    create_mdev,
)
from worker.settings.host import HostSettings

UUID = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525"
DOMCAPS_VFIO = """<domainCapabilities><devices><hostdev supported='yes'>
<enum name='pciBackend'><value>default</value><value>vfio</value></enum>
</hostdev></devices></domainCapabilities>"""
DOMCAPS_NO_VFIO = """<domainCapabilities><devices><hostdev supported='yes'>
<enum name='pciBackend'/></hostdev></devices></domainCapabilities>"""


def recipe(**vm: Any) -> HostSettings:
    base: dict[str, Any] = {
        "cpu": {"model": "Haswell", "features": ["+x2apic"]},
        "usb": [{"vendor": "0511", "product": "0045", "label": "tuner"}],
        "pci": [{"address": "01:00.0", "label": "PT3"}],
    }
    return HostSettings.model_validate({"vm": base | vm})


def by_name(report: Report) -> dict[str, Status]:
    return {c.name: c.status for c in report.checks}


def check(report: Report, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def test_haswell_with_iommu_on_and_igpu_on_vfio_passes(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, usb=[USB_TUNER])
    bind(root, "0000:00:02.0", "vfio-pci")
    bind(root, "0000:01:00.0", "vfio-pci")
    report = run_preflight(recipe(), root)
    assert report.ok, report.checks
    assert check(report, "device 0000:00:02.0").detail == "iGPU: 0x8086:0x041a class 0x030000"
    assert "group 2: 0000:00:02.0 (vfio-pci)" in check(report, "iommu-group 0000:00:02.0").detail


def test_haswell_with_iommu_off_fails_with_the_grub_fix(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, iommu=False, cmdline=HASWELL_CMDLINE_OFF)
    report = run_preflight(recipe(), root)
    assert not report.ok
    iommu = check(report, "iommu")
    assert iommu.status == Status.FAIL
    assert "intel_iommu=on iommu=pt" in iommu.fix
    assert by_name(report)["iommu-group 0000:00:02.0"] == Status.FAIL


def test_iommu_asked_for_but_absent_points_at_the_firmware(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, iommu=False)
    assert "VT-d" in check(run_preflight(recipe(), root), "iommu").fix


def test_igpu_bound_to_i915_is_a_warning_with_the_vfio_ids_fix(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, usb=[USB_TUNER])
    bind(root, "0000:01:00.0", "vfio-pci")
    report = run_preflight(recipe(), root)
    driver = check(report, "gpu-driver")
    assert driver.status == Status.WARN
    assert "vfio-pci.ids=8086:041a" in driver.fix
    assert check(report, "boot-vga").status == Status.WARN
    assert report.ok


def test_card_sharing_a_group_with_a_host_nic_fails_naming_the_nic(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_SHARED_GROUP, usb=[USB_TUNER])
    report = run_preflight(recipe(), root)
    group = check(report, "iommu-group 0000:01:00.0")
    assert group.status == Status.FAIL
    assert "0000:02:00.0 (igb)" in group.detail
    assert "0000:00:01.1" not in group.detail.split("shared with")[1], "bridges do not block"


def test_card_whose_group_holds_only_bridges_and_itself_passes(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    assert check(run_preflight(recipe(), root), "iommu-group 0000:01:00.0").status == Status.PASS


def test_missing_vfio_modules_fail_with_modprobe(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, vfio_loaded=False)
    vfio = check(run_preflight(recipe(), root), "vfio")
    assert vfio.status == Status.FAIL and "modprobe vfio-pci" in vfio.fix


def test_wrong_address_is_caught_by_the_vendor_check(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    report = run_preflight(recipe(gpu={"address": "0000:00:19.0"}), root)
    assert check(report, "device 0000:00:19.0").status == Status.FAIL
    report = run_preflight(
        recipe(gpu={"address": "0000:00:02.0", "expected_vendor": "0x1002"}), root
    )
    assert "expected vendor 0x1002" in check(report, "device 0000:00:02.0").detail


def test_unplugged_usb_tuner_warns_unless_required(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    assert check(run_preflight(recipe(), root), "usb 0511:0045").status == Status.WARN
    required = recipe(usb=[{"vendor": "0511", "product": "0045", "required": True}])
    assert check(run_preflight(required, root), "usb 0511:0045").status == Status.FAIL


def test_gvtg_type_present_and_mdev_created_passes(tmp_path: Path) -> None:
    root = build_host(tmp_path, COFFEELAKE_DEVICES, gvtg_types=GVTG_TYPES)
    settings = HostSettings.model_validate({"vm": {"gpu": {"kind": "gvtg", "mdev_uuid": UUID}}})
    report = run_preflight(settings, root)
    assert check(report, "mdev-device").status == Status.FAIL
    assert f"echo {UUID} > sys/" in check(report, "mdev-device").fix
    create_mdev(root, UUID)
    report = run_preflight(settings, root)
    assert report.ok, report.checks
    assert check(report, "gvtg-type").detail == "2 free"
    assert check(report, "gpu-driver").status == Status.PASS


def test_gvtg_on_haswell_fails_saying_it_is_not_covered(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    settings = HostSettings.model_validate({"vm": {"gpu": {"kind": "gvtg", "mdev_uuid": UUID}}})
    gvtg = check(run_preflight(settings, root), "gvtg-type")
    assert gvtg.status == Status.FAIL and "not Haswell" in gvtg.fix


def test_missing_sriov_vf_fails_with_the_numvfs_fix(tmp_path: Path) -> None:
    root = build_host(tmp_path, COFFEELAKE_DEVICES)
    settings = HostSettings.model_validate({"vm": {"gpu": {"kind": "sriov", "address": "00:02.1"}}})
    vf = check(run_preflight(settings, root), "sriov-vf")
    assert vf.status == Status.FAIL and "sriov_numvfs" in vf.fix


def test_hugepages_are_checked_only_when_asked(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, hugepages_free=1024)
    assert "hugepages" not in by_name(run_preflight(recipe(), root))
    report = run_preflight(recipe(hugepages=True, memory_mib=4096), root)
    assert check(report, "hugepages").status == Status.FAIL
    assert "vm.nr_hugepages=2048" in check(report, "hugepages").fix
    assert (
        check(run_preflight(recipe(hugepages=True, memory_mib=2048), root), "hugepages").status
        == Status.PASS
    )


def test_libvirt_without_the_vfio_backend_fails(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    with_vfio = run_preflight(
        recipe(), root, lambda: LibvirtFacts(domain_capabilities=DOMCAPS_VFIO)
    )
    assert check(with_vfio, "libvirt-vfio").status == Status.PASS
    without = run_preflight(
        recipe(), root, lambda: LibvirtFacts(domain_capabilities=DOMCAPS_NO_VFIO)
    )
    assert check(without, "libvirt-vfio").status == Status.FAIL


def test_a_vm_without_host_devices_needs_no_vfio_backend(tmp_path: Path) -> None:
    """gpu kind none and no PCI devices (a software-only or an emulated guest): libvirt
    must answer, but its lack of vfio is no reason to refuse the VM."""
    root = build_host(tmp_path, HASWELL_DEVICES)
    plain = recipe(gpu={"kind": "none"}, pci=[])
    report = run_preflight(plain, root, lambda: LibvirtFacts(domain_capabilities=DOMCAPS_NO_VFIO))
    assert "libvirt-vfio" not in by_name(report)
    assert check(report, "libvirt").status == Status.PASS
    with_device = recipe(gpu={"kind": "none"})  # the PT3 of recipe() is still passed through
    report = run_preflight(
        with_device, root, lambda: LibvirtFacts(domain_capabilities=DOMCAPS_NO_VFIO)
    )
    assert check(report, "libvirt-vfio").status == Status.FAIL


def test_unreachable_libvirt_fails_with_the_reason(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    report = run_preflight(recipe(), root, lambda: LibvirtFacts(error="cannot connect: refused"))
    assert check(report, "libvirt").detail == "cannot connect: refused"
    assert not report.ok


def test_vm_without_passthrough_skips_the_iommu_checks(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES, iommu=False)
    settings = HostSettings.model_validate({"vm": {"gpu": {"kind": "none"}}})
    report = run_preflight(settings, root)
    assert report.ok and "iommu" not in by_name(report)


def nvme_host(tmp_path: Path, **extra: Any) -> Path:
    """The fixture host whose 01:00.0 is its NVMe root disk and eno1 its network."""
    return build_host(
        tmp_path,
        HASWELL_NVME_ROOT,
        usb=[USB_TUNER],
        block=[(NVME_ADDRESS, NVME_ROOT_DISK)],
        nets=[ENO1],
        mountinfo=NVME_ROOT_MOUNTINFO,
        swaps=NVME_ROOT_SWAPS,
        routes=ENO1_ROUTES,
        **extra,
    )


def test_passing_the_hosts_mounted_nvme_root_disk_fails_saying_what_it_is(
    tmp_path: Path,
) -> None:
    root = nvme_host(tmp_path)
    bind(root, "0000:00:02.0", "vfio-pci")
    report = run_preflight(recipe(), root)
    assert not report.ok
    use = check(report, f"host-use {NVME_ADDRESS}")
    assert use.status == Status.FAIL
    for fact in (
        "Samsung Electronics Co Ltd NVMe SSD Controller SM981/PM981/PM983 [144d:a808]",
        "Non-Volatile memory controller: NVM Express (class 0x010802)",
        "driver nvme",
        "nvme0n1p2 mounted on /",
        "nvme0n1p1 mounted on /boot/efi",
        "nvme0n1p3 is swap",
        "host's own disk",
    ):
        assert fact in use.detail, (fact, use.detail)
    assert "PT3" in use.detail, "the label the config gave it is named"
    assert f"remove {NVME_ADDRESS}" in use.fix


def test_a_disk_behind_device_mapper_counts_as_mounted(tmp_path: Path) -> None:
    disks = [*NVME_ROOT_DISK[:3]]
    from tests.unit.host_agent.sysfs_fixtures import Block

    disks.append(Block("nvme0n1p3", "259:3", "nvme/nvme0/nvme0n1/nvme0n1p3", ("dm-0",)))
    mountinfo = "40 1 254:0 / /srv rw,relatime shared:2 - ext4 /dev/mapper/vg-srv rw\n"
    root = build_host(
        tmp_path, HASWELL_NVME_ROOT, block=[(NVME_ADDRESS, disks)], mountinfo=mountinfo
    )
    (root / "sys/devices/virtual/block/dm-0").mkdir(parents=True)
    (root / "sys/devices/virtual/block/dm-0/dev").write_text("254:0\n")
    (root / "sys/class/block/dm-0").symlink_to("../../devices/virtual/block/dm-0")
    use = check(run_preflight(recipe(), root), f"host-use {NVME_ADDRESS}")
    assert use.status == Status.FAIL
    assert "dm-0 (on nvme0n1p3) mounted on /srv" in use.detail


def test_the_hosts_nic_with_routes_fails_as_its_network(tmp_path: Path) -> None:
    root = nvme_host(tmp_path)
    report = run_preflight(recipe(pci=[{"address": "00:19.0", "label": "tuner"}]), root)
    use = check(report, "host-use 0000:00:19.0")
    assert use.status == Status.FAIL
    assert "Intel Corporation Ethernet Connection I217-LM [8086:153a]" in use.detail
    assert "interface eno1 is up (up) with 2 route(s)" in use.detail
    assert "host's own network" in use.detail


def test_a_nic_that_is_down_without_routes_is_only_a_warning(tmp_path: Path) -> None:
    from tests.unit.host_agent.sysfs_fixtures import Net

    root = build_host(
        tmp_path, HASWELL_DEVICES, nets=[Net("eno1", "0000:00:19.0", "0x1002", "down")]
    )
    use = check(run_preflight(recipe(pci=[{"address": "00:19.0"}]), root), "host-use 0000:00:19.0")
    assert use.status == Status.WARN
    assert "e1000e" in use.detail


def test_an_unmounted_disk_on_the_card_passes_the_host_use_check(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_NVME_ROOT, block=[(NVME_ADDRESS, NVME_ROOT_DISK)])
    bind(root, NVME_ADDRESS, "vfio-pci")
    use = check(run_preflight(recipe(), root), f"host-use {NVME_ADDRESS}")
    assert use.status == Status.PASS


def test_without_pci_ids_the_class_is_still_named(tmp_path: Path) -> None:
    root = build_host(
        tmp_path,
        HASWELL_NVME_ROOT,
        block=[(NVME_ADDRESS, NVME_ROOT_DISK)],
        mountinfo=NVME_ROOT_MOUNTINFO,
        pci_ids=False,
    )
    use = check(run_preflight(recipe(), root), f"host-use {NVME_ADDRESS}")
    assert "vendor 144d device a808 [144d:a808], Mass storage controller" in use.detail


def test_a_tuner_card_bound_to_its_host_driver_warns_that_the_host_loses_it(
    tmp_path: Path,
) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    use = check(run_preflight(recipe(), root), f"host-use {NVME_ADDRESS}")
    assert use.status == Status.WARN
    assert "pt3_drv" in use.detail and "Altera Corporation" in use.detail


def test_a_wrong_igpu_address_never_suggests_binding_that_device_to_vfio(
    tmp_path: Path,
) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    report = run_preflight(recipe(gpu={"address": "0000:00:19.0"}), root)
    assert check(report, "device 0000:00:19.0").status == Status.FAIL
    texts = " ".join(c.detail + c.fix for c in report.checks)
    assert "vfio-pci.ids=8086:153a" not in texts, "that is the host's network card"
    assert "gpu-driver" not in by_name(report), "no driver advice for the wrong device"


def test_the_vfio_ids_fix_names_the_igpu_it_binds(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    driver = check(run_preflight(recipe(), root), "gpu-driver")
    assert "vfio-pci.ids=8086:041a" in driver.fix
    assert "Xeon E3-1200 v3 Processor Integrated Graphics Controller" in driver.fix


def test_an_id_shared_with_a_host_device_gets_a_per_address_override_instead(
    tmp_path: Path,
) -> None:
    from tests.unit.host_agent.sysfs_fixtures import Pci

    twin = Pci("0000:00:02.1", "0x8086", "0x041a", "0x038000", "i915", 9)
    root = build_host(tmp_path, [*HASWELL_DEVICES, twin])
    driver = check(run_preflight(recipe(), root), "gpu-driver")
    assert "vfio-pci.ids=" not in driver.fix
    assert "driverctl set-override 0000:00:02.0 vfio-pci" in driver.fix
    assert "0000:00:02.1" in driver.fix


def test_libvirt_permission_denied_points_at_the_libvirt_group(tmp_path: Path) -> None:
    root = build_host(tmp_path, HASWELL_DEVICES)
    error = (
        "cannot connect to libvirt at qemu:///system: Failed to connect socket to "
        "'/var/run/libvirt/libvirt-sock': Permission denied"
    )
    report = run_preflight(recipe(), root, lambda: LibvirtFacts(error=error))
    libvirt = check(report, "libvirt")
    assert libvirt.status == Status.FAIL
    assert "libvirt group" in libvirt.fix
    assert "adduser kamado libvirt" in libvirt.fix


MOUNT_POINT = st.lists(
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/ \\"),
            min_size=1, max_size=12),
    min_size=0, max_size=3,
).map(lambda parts: "/" + "/".join(parts))  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    partitions=st.integers(min_value=1, max_value=4),
    mounted=st.data(),
    elsewhere=st.lists(MOUNT_POINT, max_size=3),
)
def test_host_use_fails_exactly_when_a_partition_of_the_device_is_mounted(
    tmp_path_factory: pytest.TempPathFactory, partitions: int, mounted: Any, elsewhere: list[str]
) -> None:
    from tests.unit.host_agent.sysfs_fixtures import Block

    disks = [Block("nvme0n1", "259:0", "nvme/nvme0/nvme0n1")]
    disks += [
        Block(f"nvme0n1p{n}", f"259:{n}", f"nvme/nvme0/nvme0n1/nvme0n1p{n}")
        for n in range(1, partitions + 1)
    ]
    chosen = mounted.draw(st.lists(st.sampled_from(disks), max_size=partitions + 1))
    points = mounted.draw(st.lists(MOUNT_POINT, min_size=len(chosen), max_size=len(chosen)))
    # Mounts on the host's other disk (a SATA disk, 8:x) never count against 01:00.0.
    lines = [f"{30 + i} 1 8:{i + 1} / {p} rw - ext4 /dev/sda{i + 1} rw" for i, p in
             enumerate(elsewhere)]  # fmt: skip
    lines += [
        f"{50 + i} 1 {disk.dev} / {point.replace(' ', chr(92) + '040')} rw - ext4 "
        f"/dev/{disk.name} rw"
        for i, (disk, point) in enumerate(zip(chosen, points, strict=True))
    ]
    root = build_host(
        tmp_path_factory.mktemp("host"),
        HASWELL_NVME_ROOT,
        block=[(NVME_ADDRESS, disks)],
        mountinfo="\n".join(lines),
    )
    use = check(run_preflight(recipe(), root), f"host-use {NVME_ADDRESS}")
    if chosen:
        assert use.status == Status.FAIL
        for disk in chosen:
            assert f"{disk.name} mounted on" in use.detail
    else:
        assert use.status == Status.WARN, "bound to nvme, but nothing of it is mounted"
        assert "mounted" not in use.detail
