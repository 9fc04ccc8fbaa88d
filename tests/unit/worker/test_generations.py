"""The generation table: every PCI id names one generation, and each row is self-consistent."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.backends.generations import (
    BY_KEY,
    GENERATIONS,
    LowPower,
    generation_for,
    main,
    packages,
    read_pci_id,
)
from worker.backends.gpu import detect_gpu
from worker.backends.gpu_ids import INTEL_VENDOR, PCI_IDS

# Real GPUs by their PCI ids (Linux i915 pciids.h, and the parts users run kamado on).
KNOWN = {
    0x0412: "haswell",  # HD 4600, i7-4770
    0x041A: "haswell",  # P4600, Xeon E3-1200 v3
    0x1616: "broadwell",  # HD 5500
    0x1912: "skylake",  # HD 530
    0x5A85: "apollo_lake",  # HD 500, J3455
    0x3185: "apollo_lake",  # UHD 600, Gemini Lake J4105
    0x5912: "kaby_lake",  # HD 630
    0x3E92: "coffee_lake",  # UHD 630, i7-8700
    0x9BC5: "coffee_lake",  # UHD 630, Comet Lake i7-10700
    0x8A52: "ice_lake",  # Iris Plus G7
    0x4E61: "jasper_lake",  # UHD, N5105
    0x9A49: "tiger_lake",  # Iris Xe, i7-1165G7
    0x4C8A: "tiger_lake",  # UHD 750, Rocket Lake
    0x4680: "alder_lake",  # UHD 770, i9-12900K
    0x46D1: "alder_lake",  # UHD, N100
    0xA780: "alder_lake",  # UHD 770, Raptor Lake
    0x7D55: "meteor_lake",  # Arc, Core Ultra 7 155H
    0x56A5: "arc",  # Arc A380
    0x56A0: "arc",  # Arc A770
}


@pytest.mark.parametrize("device", sorted(KNOWN))
def test_real_gpus_are_named_by_their_pci_id(device: int) -> None:
    found = generation_for(INTEL_VENDOR, device)
    assert found is not None and found.key == KNOWN[device]


def test_no_pci_id_belongs_to_two_generations() -> None:
    seen: dict[int, str] = {}
    for key, ids in PCI_IDS.items():
        for device in ids:
            assert device not in seen, f"{device:04x} in {seen.get(device)} and {key}"
            seen[device] = key
    assert set(PCI_IDS) == set(BY_KEY)


@given(vendor=st.integers(0, 0xFFFF), device=st.integers(0, 0xFFFF))
def test_only_intel_ids_in_the_table_get_a_generation(vendor: int, device: int) -> None:
    found = generation_for(vendor, device)
    if vendor != INTEL_VENDOR:
        assert found is None
    elif found is not None:
        assert device in found.pci_ids


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.key)
def test_each_generation_is_consistent(generation: object) -> None:
    from worker.backends.generations import Generation

    assert isinstance(generation, Generation)
    assert generation.backends and set(generation.backends) <= {"qsv", "vaapi"}
    assert generation.va_driver in ("i965", "iHD")
    if generation.low_power is LowPower.REQUIRED:
        # VDEnc has no ICQ (issue #20 §2).
        assert "ICQ" not in generation.qsv_rate_control + generation.vaapi_rate_control
    if "qsv" in generation.backends:
        assert generation.va_driver == "iHD" and "libmfx1" in generation.packages
        assert generation.qsv_rate_control
    assert generation.vaapi_rate_control and generation.quirks is not None
    assert generation.pci_ids


def test_the_table_says_what_issue_20_found() -> None:
    haswell = BY_KEY["haswell"]
    assert haswell.backends == ("vaapi",) and haswell.va_driver == "i965"
    assert haswell.vaapi_rate_control == ("CQP", "CBR", "VBR")  # i965 hsw_hw_codec_info
    for key in ("alder_lake", "meteor_lake", "arc"):
        assert "libmfx-gen1.2" in BY_KEY[key].packages
    assert BY_KEY["meteor_lake"].min_driver == "23.3"
    for key in ("jasper_lake", "meteor_lake", "arc"):
        assert BY_KEY[key].low_power is LowPower.REQUIRED
    for key in ("broadwell", "skylake", "kaby_lake", "coffee_lake", "ice_lake"):
        assert "intel-media-va-driver-non-free" in BY_KEY[key].packages


def test_the_image_packages_cover_every_generation() -> None:
    free, non_free = packages(non_free=False), packages(non_free=True)
    assert {"ffmpeg", "vainfo", "i965-va-driver", "libmfx1", "libmfx-gen1.2"} <= set(free)
    assert "intel-media-va-driver" in free and "intel-media-va-driver-non-free" not in free
    assert "intel-media-va-driver-non-free" in non_free and "intel-media-va-driver" not in non_free
    assert "firmware-misc-nonfree" in non_free and "firmware-misc-nonfree" not in free
    assert len(set(non_free)) == len(non_free)


def test_the_packages_command_prints_one_a_line_and_refuses_anything_else(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["packages", "--non-free"]) == 0
    assert capsys.readouterr().out.split() == packages(non_free=True)
    assert main(["packages", "--free"]) == 2
    assert "usage:" in capsys.readouterr().err


def fake_sysfs(root: Path, node: str, vendor: str, device: str) -> Path:
    """A /sys/class/drm tree as the kernel writes it ("0x8086\\n"): the GPU this machine lacks."""
    device_dir = root / "class" / "drm" / node / "device"
    device_dir.mkdir(parents=True)
    (device_dir / "vendor").write_text(f"{vendor}\n")
    (device_dir / "device").write_text(f"{device}\n")
    return root


def test_the_render_nodes_pci_id_names_its_generation(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path, "renderD128", "0x8086", "0x3e92")
    assert read_pci_id(Path("/dev/dri/renderD128"), root) == (0x8086, 0x3E92)
    gpu = detect_gpu(Path("/dev/dri/renderD128"), root)
    assert (gpu.pci_id, gpu.generation, gpu.va_driver) == ("8086:3e92", "coffee_lake", "iHD")
    assert gpu.expected_backends == ["qsv", "vaapi"] and not gpu.low_power_required


def test_a_low_power_only_gpu_says_so(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path, "renderD129", "0x8086", "0x56a5")
    gpu = detect_gpu(Path("/dev/dri/renderD129"), root)
    assert gpu.generation == "arc" and gpu.low_power_required


def test_unknown_and_missing_gpus_get_a_note_not_a_guess(tmp_path: Path) -> None:
    amd = detect_gpu(
        Path("/dev/dri/renderD128"), fake_sysfs(tmp_path / "a", "renderD128", "0x1002", "0x73bf")
    )
    assert (amd.pci_id, amd.generation, amd.note) == ("1002:73bf", "", "not an Intel GPU")
    new = detect_gpu(
        Path("/dev/dri/renderD128"), fake_sysfs(tmp_path / "b", "renderD128", "0x8086", "0xffff")
    )
    assert new.generation == "" and "does not list" in new.note
    assert "no PCI id" in detect_gpu(Path("/dev/dri/renderD128"), tmp_path / "none").note
    bad = fake_sysfs(tmp_path / "c", "renderD128", "garbage", "0x3e92")
    assert read_pci_id(Path("/dev/dri/renderD128"), bad) is None


def test_the_hardware_page_has_a_true_row_for_every_generation() -> None:
    page = (Path(__file__).parents[3] / "docs" / "hardware.md").read_text()
    rows = {
        line.split("|")[2].strip(" `"): line
        for line in page.splitlines()
        if line.startswith("| ") and "`" in line
    }
    for generation in GENERATIONS:
        row = rows[generation.key]
        assert generation.name in row and f"`{generation.va_driver}`" in row
        assert all(f"`{name}`" in row for name in generation.packages)
        assert f"| {generation.low_power.value} |" in row
    assert "kamado guest probe --refresh --json" in page
