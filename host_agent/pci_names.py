"""Human names for PCI devices from the host's pci.ids (what `lspci` shows), for preflight.

Read under the host root, so a fixture tree carries its own excerpt. Without pci.ids
(package ``pci.ids`` on Debian) the class falls back to the PCI base-class names below.
"""

from __future__ import annotations

from dataclasses import dataclass

from host_agent.sysfs import Host

PCI_IDS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")
# PCI base classes (PCI Code and ID Assignment Specification), for hosts without pci.ids.
BASE_CLASSES = {
    "00": "Unclassified device",
    "01": "Mass storage controller",
    "02": "Network controller",
    "03": "Display controller",
    "04": "Multimedia controller",
    "05": "Memory controller",
    "06": "Bridge",
    "07": "Communication controller",
    "08": "Generic system peripheral",
    "0c": "Serial bus controller",
    "0d": "Wireless controller",
    "10": "Encryption controller",
    "11": "Signal processing controller",
}


@dataclass(frozen=True)
class PciName:
    """What a PCI device is: vendor and device names, and its class in words."""

    vendor: str
    device: str
    cls: str


def _find(text: str, vendor: str, device: str, cls: str) -> tuple[str, str, list[str]]:
    """Scan pci.ids once: the vendor's and device's names, the class/subclass/prog-if names."""
    names = {"vendor": "", "device": ""}
    wanted_class = [cls[0:2], cls[2:4], cls[4:6]]
    class_names: list[str] = []
    top = ""  # the vendor or class line we are under ("v:144d", "c:01")
    sub = ""  # the subclass line we are under, inside a class
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        depth = len(line) - len(line.lstrip("\t"))
        code, _, name = line.strip().removeprefix("C ").partition("  ")
        code, name = code.lower(), name.strip()
        if depth == 0:
            top = ("c:" if line.startswith("C ") else "v:") + code
            if top == f"v:{vendor}":
                names["vendor"] = name
            elif top == f"c:{wanted_class[0]}":
                class_names = [name]
        elif top == f"v:{vendor}" and depth == 1 and code == device:
            names["device"] = name
        elif top == f"c:{wanted_class[0]}" and depth == 1:
            sub = code
            if code == wanted_class[1]:
                class_names.append(name)
        elif (
            top == f"c:{wanted_class[0]}" and depth == 2 and (sub, code) == tuple(wanted_class[1:])
        ):
            class_names.append(name)
    return names["vendor"], names["device"], class_names


def pci_name(host: Host, vendor: str, device: str, cls: str) -> PciName:
    """The names of vendor:device (hex without 0x) and class (six hex digits) on this host."""
    text = next((t for p in PCI_IDS if (t := host.read(p))), "")
    found_vendor, found_device, class_names = (
        _find(text, vendor, device, cls) if text else ("", "", [])
    )
    if len(class_names) > 1:
        class_text = class_names[1] + (f": {class_names[2]}" if len(class_names) > 2 else "")
    else:
        class_text = class_names[0] if class_names else BASE_CLASSES.get(cls[:2], "unknown class")
    return PciName(
        vendor=found_vendor or f"vendor {vendor}",
        device=found_device or f"device {device}",
        cls=class_text,
    )
