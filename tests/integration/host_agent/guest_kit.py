"""A bootable test guest: Debian's kernel plus a busybox initramfs running the host's own root.

The guest mounts the host's / read-only over 9p with a tmpfs overlay, so it runs the same
Python as the tests; its only network is a user-mode forward to the test's redis-server.
``prepare`` needs a ``linux-image-*-amd64_*.deb`` in the kit directory (fetch it once with
``apt-get download linux-image-6.1.0-NN-amd64``) and ``busybox-static`` installed.
"""

from __future__ import annotations

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
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /mnt/host
mount -t tmpfs tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot
for d in proc sys dev; do mount --move /$d /newroot/$d; done
ifconfig lo up
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
echo "kamado-guest: userspace up"
chroot /newroot "$kamado_py" "$kamado_script" "$kamado_port" "$kamado_name"
echo "kamado-guest: program ended"
poweroff -f
"""

# Runs in the guest with the host's Python: a worker heartbeat every second through the
# forwarded port, written as raw RESP so the guest needs nothing but the standard library.
HEARTBEAT = r"""
import datetime, json, socket, sys, time

port, name = int(sys.argv[1]), sys.argv[2]


def command(sock, *parts):
    data = b"*%d\r\n" % len(parts)
    for part in parts:
        raw = part.encode()
        data += b"$%d\r\n%s\r\n" % (len(raw), raw)
    sock.sendall(data)
    return sock.recv(1024)


while True:
    try:
        with socket.create_connection(("10.0.2.100", port), timeout=5) as sock:
            while True:
                beat = {
                    "schema_version": 1,
                    "hostname": "celery@" + name,  # a Celery worker's node name
                    "queues": ["encode.gpu"],
                    "current_job": None,
                    "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                }
                key = "kamado:heartbeat:worker:celery@" + name
                command(sock, "SET", key, json.dumps(beat), "PX", "5000")
                print("kamado-guest: heartbeat sent", flush=True)
                time.sleep(1)
    except OSError as e:
        print("kamado-guest: redis unreachable:", e, flush=True)
        time.sleep(0.5)
"""


@dataclass(frozen=True)
class GuestKit:
    """A kernel, an initramfs and the guest program, ready for direct kernel boot."""

    kernel: Path
    initrd: Path
    script: Path


def kit_dir() -> Path:
    """Where the kernel .deb and the built kit live."""
    return Path(os.environ.get(KIT_ENV, str(DEFAULT_KIT))).expanduser()


def missing() -> str:
    """Why a guest cannot be built here, or '' when it can."""
    if not BUSYBOX.exists() or shutil.which("cpio") is None:
        return "busybox-static and cpio are not installed (the test guest's initramfs needs them)"
    if not list(kit_dir().glob("linux-image-*-amd64_*.deb")):
        return (
            "the test guest's kernel is not installed: run `apt-get download "
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
    initrd = base / f"initrd-{version}.cpio"
    script = base / "heartbeat.py"
    script.write_text(HEARTBEAT)
    if not initrd.exists():
        _build_initrd(unpacked / "lib" / "modules" / version, initrd)
    return GuestKit(kernel=kernel, initrd=initrd, script=script)


def _build_initrd(modules: Path, target: Path) -> None:
    tree = target.with_suffix(".tree")
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
    partial = target.with_suffix(".partial")
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
