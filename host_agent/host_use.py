"""What the host itself uses a PCI device for: its disks' mounted file systems and swap,
its network interfaces that are up or carry routes.

A device the host uses must never be passed to the VM: libvirt would unbind it from its
driver at start, taking the host's root disk or its network with it. Everything is read
under the host root (sysfs, /proc/self/mountinfo, /proc/swaps, /proc/net/route), so the
same code runs on a fixture tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from host_agent.sysfs import Host

IFF_UP = 0x1


@dataclass(frozen=True)
class HostUse:
    """The host's uses of one PCI device: one phrase each ('nvme0n1p2 mounted on /')."""

    address: str
    block: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)

    @property
    def in_use(self) -> bool:
        """True when passing the device would take something from the running host."""
        return bool(self.block or self.network)


def _under(path: Path | None, parent: Path) -> bool:
    return path is not None and path.is_relative_to(parent)


def _mounts(host: Host) -> dict[str, list[str]]:
    """major:minor -> the mount points of file systems on it (from mountinfo)."""
    found: dict[str, list[str]] = {}
    for line in host.read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4:
            # Mount points escape spaces as \040; show them as the kernel wrote them.
            found.setdefault(fields[2], []).append(fields[4])
    return found


def _swaps(host: Host) -> set[str]:
    """Names of block devices the host swaps on (/proc/swaps: /dev/NAME ...)."""
    lines = host.read("/proc/swaps").splitlines()[1:]
    return {line.split()[0].removeprefix("/dev/") for line in lines if line.split()}


def _holders(host: Host, name: str) -> list[str]:
    """Block devices stacked on ``name`` (device-mapper, md), transitively."""
    out: list[str] = []
    for holder in host.entries(f"/sys/class/block/{name}/holders"):
        out += [holder, *_holders(host, holder)]
    return out


def block_use(host: Host, device_dir: Path) -> list[str]:
    """Mounted file systems and swap on the block devices below a PCI device's directory."""
    mounts = _mounts(host)
    swaps = _swaps(host)
    uses: list[str] = []
    for name in host.entries("/sys/class/block"):
        if not _under(host.real(f"/sys/class/block/{name}"), device_dir):
            continue
        for dev in [name, *_holders(host, name)]:
            where = mounts.get(host.read(f"/sys/class/block/{dev}/dev"), [])
            via = f"{dev} (on {name})" if dev != name else dev
            uses += [f"{via} mounted on {point}" for point in where]
            if dev in swaps:
                uses.append(f"{via} is swap")
    return uses


def _routes(host: Host) -> dict[str, int]:
    """Interface name -> how many IPv4 and IPv6 routes use it."""
    counts: dict[str, int] = {}
    for line in host.read("/proc/net/route").splitlines()[1:]:
        if fields := line.split():
            counts[fields[0]] = counts.get(fields[0], 0) + 1
    for line in host.read("/proc/net/ipv6_route").splitlines():
        if fields := line.split():
            counts[fields[-1]] = counts.get(fields[-1], 0) + 1
    return counts


def network_use(host: Host, device_dir: Path) -> list[str]:
    """The device's network interfaces that are up or carry routes."""
    routes = _routes(host)
    uses: list[str] = []
    for name in host.entries("/sys/class/net"):
        if not _under(host.real(f"/sys/class/net/{name}/device"), device_dir):
            continue
        try:
            flags = int(host.read(f"/sys/class/net/{name}/flags", "0"), 16)
        except ValueError:
            flags = 0
        state = host.read(f"/sys/class/net/{name}/operstate", "unknown")
        parts = []
        if flags & IFF_UP:
            parts.append(f"up ({state})")
        if routes.get(name):
            parts.append(f"{routes[name]} route(s)")
        if parts:
            uses.append(f"interface {name} is {' with '.join(parts)}")
    return uses


def host_use(host: Host, address: str) -> HostUse:
    """How the running host uses the PCI device at ``address`` (nothing if it is absent)."""
    device_dir = host.real(host.pci(address))
    if device_dir is None:
        return HostUse(address)
    return HostUse(address, block_use(host, device_dir), network_use(host, device_dir))
