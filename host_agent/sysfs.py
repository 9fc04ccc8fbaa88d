"""Reading a host's /sys, /proc and /dev under one root: ``/``, or a fixture tree in tests."""

from __future__ import annotations

from pathlib import Path


class Host:
    """Reads a host's sysfs, procfs and /dev under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, absolute: str) -> Path:
        """``absolute`` (e.g. /sys/class/iommu) under the root."""
        return self.root / absolute.lstrip("/")

    def read(self, absolute: str | Path, default: str = "") -> str:
        """A small sysfs file's stripped text, or ``default``."""
        try:
            return self.path(str(absolute)).read_text(errors="replace").strip()
        except OSError:
            return default

    def entries(self, absolute: str) -> list[str]:
        """Names in a directory, sorted; empty when it is missing."""
        try:
            return sorted(p.name for p in self.path(absolute).iterdir())
        except OSError:
            return []

    def real(self, absolute: str) -> Path | None:
        """Where a sysfs link points (resolved under the root), or None when it is missing."""
        link = self.path(absolute)
        return link.resolve() if link.exists() else None

    def pci(self, address: str) -> str:
        """The sysfs directory of a PCI device."""
        return f"/sys/bus/pci/devices/{address}"

    def driver(self, address: str) -> str:
        """The driver a PCI device is bound to, or ''."""
        link = self.path(self.pci(address) + "/driver")
        return link.resolve().name if link.exists() else ""

    def iommu_group(self, address: str) -> str | None:
        """The IOMMU group number of a PCI device, or None."""
        link = self.path(self.pci(address) + "/iommu_group")
        return link.resolve().name if link.exists() else None

    def pci_ids(self, address: str) -> tuple[str, str, str]:
        """A PCI device's vendor, device and class, without the 0x (e.g. 144d, a808, 010802)."""
        base = self.pci(address)
        return tuple(  # type: ignore[return-value]  # always three
            self.read(f"{base}/{name}").lower().removeprefix("0x")
            for name in ("vendor", "device", "class")
        )
