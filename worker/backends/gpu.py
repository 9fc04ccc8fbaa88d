"""The GPU behind the render node: its PCI id, its generation, and what kamado expects there."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from worker.backends.generations import Generation, LowPower, generation_for, read_pci_id

__all__ = ["GpuFound"]


class GpuFound(BaseModel):
    """The render node's GPU as the probe reports it (``kamado guest probe --json``)."""

    model_config = ConfigDict(frozen=True)

    pci_id: str = ""  # "8086:3e92", empty when sysfs does not say
    generation: str = ""  # worker/backends/generations.py key, empty when not in the table
    name: str = ""
    expected_backends: list[str] = []
    va_driver: str = ""
    packages: list[str] = []
    low_power: str = ""
    qsv_rate_control: list[str] = []
    vaapi_rate_control: list[str] = []
    min_driver: str = ""
    quirks: list[str] = []
    note: str = ""

    @property
    def low_power_required(self) -> bool:
        """True when H.264 encode exists only on the low-power entrypoint."""
        return self.low_power == LowPower.REQUIRED.value


def describe(vendor: int, device: int, generation: Generation | None) -> GpuFound:
    """What the table says about a PCI id (a note when it says nothing)."""
    pci_id = f"{vendor:04x}:{device:04x}"
    if generation is None:
        note = (
            "not an Intel GPU"
            if vendor != 0x8086
            else "an Intel id kamado's generation table does not list (please report it)"
        )
        return GpuFound(pci_id=pci_id, note=note)
    return GpuFound(
        pci_id=pci_id,
        generation=generation.key,
        name=generation.name,
        expected_backends=list(generation.backends),
        va_driver=generation.va_driver,
        packages=list(generation.packages),
        low_power=generation.low_power.value,
        qsv_rate_control=list(generation.qsv_rate_control),
        vaapi_rate_control=list(generation.vaapi_rate_control),
        min_driver=generation.min_driver,
        quirks=list(generation.quirks),
    )


def detect_gpu(render_node: Path, sys_root: Path = Path("/sys")) -> GpuFound:
    """The generation of the GPU behind ``render_node``, read from sysfs."""
    ids = read_pci_id(render_node, sys_root)
    if ids is None:
        return GpuFound(note=f"no PCI id for {render_node} under {sys_root}/class/drm")
    vendor, device = ids
    return describe(vendor, device, generation_for(vendor, device))
