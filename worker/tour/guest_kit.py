"""A bootable guest without a disk image: Debian's kernel plus a busybox initramfs that runs
the host's own root.

The guest mounts the host's / read-only over 9p (mount tag ``hostroot``) with a tmpfs
overlay on top, so it runs the host's Python and kamado, and writes only to its own RAM.
Its init brings up the network (10.0.2.15, QEMU's user-mode network: whatever the VM's
``guestfwd`` rules forward is all it reaches), sets the hostname given as
``kamado_host=NAME`` on the kernel command line, and runs the shell script named by
``kamado_run=PATH`` (a path on the host) inside that root; when the script ends the guest
powers off. An ACPI power-button press (``virsh shutdown``) powers it off too.

``prepare`` needs a ``linux-image-*-amd64_*.deb`` in the kit directory (fetch it once with
``apt-get download linux-image-6.1.0-NN-amd64``) and ``busybox-static`` and ``cpio``
installed. The host agent's real-guest tests and ``kamado demo --topology`` boot it
under QEMU TCG through libvirt's embedded driver.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
KIT_ENV = "KAMADO_TEST_GUEST_DIR"
DEFAULT_KIT = Path("~/.cache/kamado/test-guest")
# Load order matters: each needs the ones before it (button and evdev for ACPI shutdown).
MODULES = [
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_ring",
    "virtio",
    "virtio_pci",
    "9pnet",
    "9pnet_virtio",
    "netfs",
    "fscache",
    "9p",
    "overlay",
    "failover",
    "net_failover",
    "virtio_net",
    "button",
    "evdev",
]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /mnt/host /mnt/rw /newroot /etc/acpi/PWRF
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m.ko 2>/dev/null; done
# A press of the ACPI power button (virsh shutdown) powers the guest off.
printf '#!/bin/sh\npoweroff -f\n' > /etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -d -c /etc/acpi -l /dev/console &
grep -h Name /proc/bus/input/devices
ls /dev/input
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /mnt/host
mount -t tmpfs tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot
for d in proc sys dev; do mount --move /$d /newroot/$d; done
# POSIX semaphores (Celery's prefork pool) live in /dev/shm.
mkdir -p /newroot/dev/shm
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
ifconfig lo up
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
route add default gw 10.0.2.2 2>/dev/null
hostname "${kamado_host:-kamado-guest}"
echo "kamado-guest: userspace up"
# A clean environment: kernel parameters named kamado_* would read as kamado settings.
env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    chroot /newroot /bin/sh "$kamado_run"
echo "kamado-guest: program ended"
poweroff -f
"""


@dataclass(frozen=True)
class GuestKit:
    """A kernel and an initramfs, ready for direct kernel boot."""

    kernel: Path
    initrd: Path

    def cmdline(self, run: Path, hostname: str) -> str:
        """The kernel command line that runs the script ``run`` as guest ``hostname``."""
        for value in (str(run), hostname):
            if not value or any(c.isspace() or c in "\"'" for c in value):
                raise ValueError(f"cannot pass {value!r} on a kernel command line")
        return f"console=ttyS0 quiet kamado_run={run} kamado_host={hostname}"


def kit_dir() -> Path:
    """Where the kernel .deb and the built kit live."""
    return Path(os.environ.get(KIT_ENV, str(DEFAULT_KIT))).expanduser()


def missing() -> str:
    """Why a guest cannot be built here, or '' when it can."""
    if not BUSYBOX.exists() or shutil.which("cpio") is None:
        return "busybox-static and cpio are not installed (the test guest's initramfs needs them)"
    if not list(kit_dir().glob("linux-image-*-amd64_*.deb")):
        return (
            "the guest's kernel is not there: run `apt-get download "
            f"linux-image-6.1.0-NN-amd64` in {kit_dir()} (or set {KIT_ENV})"
        )
    return ""


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, timeout=300, **kwargs)  # type: ignore[call-overload]


def prepare(directory: Path | None = None) -> GuestKit:
    """Unpack the kernel (once) and build the initramfs; return the kit."""
    base = directory or kit_dir()
    deb = sorted(base.glob("linux-image-*-amd64_*.deb"))[-1]
    unpacked = base / "root"
    if not (unpacked / "boot").is_dir():
        _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    kernel = sorted((unpacked / "boot").glob("vmlinuz-*"))[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    initrd = base / f"initrd-{version}-{_digest()}.cpio"
    if not initrd.exists():
        _build_initrd(unpacked / "lib" / "modules" / version, initrd)
    return GuestKit(kernel=kernel, initrd=initrd)


def _digest() -> str:
    """A short hash of what goes into the initramfs: a changed init is a new file."""
    return hashlib.sha256(f"{INIT}{MODULES}".encode()).hexdigest()[:10]


def _build_initrd(modules: Path, target: Path) -> None:
    # Each builder its own tree: two processes may build the same kit at once.
    tree = target.with_name(f"{target.name}.{os.getpid()}.tree")
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "bin").mkdir(parents=True)
    (tree / "lib" / "modules").mkdir(parents=True)
    shutil.copy2(BUSYBOX, tree / "bin" / "busybox")
    found = {p.name.removesuffix(".ko"): p for p in modules.rglob("*.ko")}
    order = [m for m in MODULES if m in found]
    for name in order:
        shutil.copy2(found[name], tree / "lib" / "modules" / f"{name}.ko")
    (tree / "modules.order").write_text(" ".join(order) + "\n")
    init = tree / "init"
    init.write_text(INIT)
    init.chmod(0o755)
    names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with partial.open("wb") as out:
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"],
            input="\n".join(names).encode() + b"\n",
            stdout=out,
            cwd=tree,
            check=True,
            timeout=120,
        )
    partial.rename(target)
    shutil.rmtree(tree)
