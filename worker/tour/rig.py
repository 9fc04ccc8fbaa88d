"""The seed's topology on one machine: a recorder box, a KVM host box, and a guest VM.

The recorder and the host are network namespaces joined by one link; the guest is a real
VM the host agent boots under QEMU (TCG here) through libvirt's embedded driver, with the
host's root shared read-only over 9p (worker/tour/guest_kit.py). Every role runs as
its real command: ``kamado scheduler run`` and ``kamado hook epgstation`` on the
recorder, ``kamado host run`` on the host, ``kamado guest run`` in the guest. They meet
only in the recorder's Redis and its sshd, exactly as three machines would.

Needs root (namespaces, sshd), redis-server, OpenSSH's sshd, QEMU and libvirt's QEMU
driver, busybox-static, cpio and a Debian kernel package (``missing`` says which is
absent and how to get it).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from worker import process
from worker.broker.registry import JobRecord, Registry
from worker.tour import guest_kit
from worker.tour.configs import (
    GUEST_REDIS,
    GUEST_SSH,
    HOST_ADDR,
    RECORDER_ADDR,
    REDIS_PORT,
    SSH_PORT,
    Layout,
    guest_config,
    host_config,
    recorder_config,
)
from worker.tour.netns import Netns, netns_problem
from worker.tour.sshd import SSHD, SshdProcess, sshd_available

RECORDER, HOST = "recorder", "host"
VM_NAME = "kamado-tour"
GUEST_WORKER = f"celery@{VM_NAME}"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SOCAT = shutil.which("socat") or "/usr/bin/socat"
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
QEMU_DRIVER = Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so")
# The embedded driver runs QEMU as root with nothing to relabel, and without the seccomp
# sandbox that forbids QEMU to spawn (its guest forwards run socat).
QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
seccomp_sandbox = 0
"""


def missing() -> str:
    """What this machine lacks for the tour, with how to get it; '' when nothing."""
    if os.geteuid() != 0:
        return "run it as root: it makes network namespaces and starts sshd and QEMU"
    if not Path(REDIS_SERVER).is_file():
        return "redis-server is not installed (apt-get install redis-server)"
    if not sshd_available():
        return "OpenSSH sshd is not installed (apt-get install openssh-server)"
    if not Path(SOCAT).is_file():
        return "socat is not installed (apt-get install socat): QEMU forwards the guest with it"
    if not Path(QEMU).is_file():
        return "QEMU is not installed (apt-get install qemu-system-x86)"
    if not QEMU_DRIVER.exists():
        return "libvirt's QEMU driver is not installed (apt-get install libvirt-daemon-driver-qemu)"
    try:
        pwd.getpwnam("libvirt-qemu")
        grp.getgrnam("libvirt-qemu")
    except KeyError:
        return "the libvirt-qemu account is missing (apt-get install libvirt-daemon-system)"
    if not importable("libvirt"):
        return "libvirt-python is not installed (pip install 'kamado[host]')"
    why = guest_kit.missing()
    if why:
        return why
    why = netns_problem()
    return f"network namespaces are not available: {why}" if why else ""


def importable(name: str) -> bool:
    """True when ``name`` can be imported by this Python."""
    import importlib.util

    return importlib.util.find_spec(name) is not None


def guest_vm(layout: Layout, kit: guest_kit.GuestKit, run: Path) -> dict[str, Any]:
    """The VM: Haswell CPU model (emulated), no GPU, its only network two forwards to the
    recorder (``restrict=on``: nothing else leaves)."""
    # cmd: runs one socat per guest connection; a tcp: forward would be a single
    # connection that every guest connection shares, mixing Redis replies up.
    forwards = ",".join(
        f"guestfwd=tcp:{inside}:{port}-cmd:{SOCAT} - TCP:{RECORDER_ADDR}:{port}"
        for inside, port in ((GUEST_REDIS, REDIS_PORT), (GUEST_SSH, SSH_PORT))
    )
    return {
        "name": VM_NAME,
        "domain_type": "qemu",
        "memory_mib": 1024,
        "vcpus": 1,
        # Debian's ffmpeg crashes on qemu64's CPUID under TCG; Haswell is the seed's model.
        "on_reboot": "destroy",
        "guest_agent_channel": False,
        "serial_log": str(layout.serial_log),
        "qemu_args": [
            "-netdev",
            f"user,id=kn0,restrict=on,{forwards}",
            "-device",
            "virtio-net-pci,netdev=kn0,bus=pcie.0,addr=0x10",
        ],
        "cpu": {"model": "Haswell-noTSX", "check": "none", "kvm_hidden": False},
        "gpu": {"kind": "none"},
        "network": {"type": "none"},
        "boot": {
            "kernel": str(kit.kernel),
            "initrd": str(kit.initrd),
            "cmdline": kit.cmdline(run, VM_NAME),
        },
        "shared_dirs": [{"source": "/", "target": "hostroot"}],
    }


def compile_roles() -> None:
    """Byte-compile kamado's packages here: the guest sees them read-only, and compiling
    them there at every boot would cost it seconds under an emulated CPU."""
    import compileall

    import worker

    root = Path(worker.__file__).resolve().parent.parent
    for package in ("worker", "scheduler", "host_agent", "guest_agent"):
        if (root / package).is_dir():
            compileall.compile_dir(root / package, quiet=1)


def kamado(*args: str) -> list[str]:
    """The argv of a kamado command run by this Python."""
    return [sys.executable, "-m", "worker.cli.main", *args]


class Topology:
    """The recorder and host namespaces, their services, and the guest the agent boots."""

    def __init__(self, base: Path, say: Callable[[str], None] = lambda _: None) -> None:
        self.layout = Layout(base)
        self.say = say
        self.password = secrets.token_hex(16)
        self.net = Netns()
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.sshd: SshdProcess | None = None
        self.scheduler: process.Daemon | None = None
        self.agent: process.Daemon | None = None
        self.client: redis.Redis | None = None
        self.registry: Registry | None = None

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> Topology:
        """Make the boxes, start Redis, sshd, the scheduler and the host agent."""
        layout = self.layout
        kit = guest_kit.prepare()
        compile_roles()
        for box in (RECORDER, HOST):
            self.net.add(box)
        self.net.link(RECORDER, RECORDER_ADDR, HOST, HOST_ADDR)
        layout.recorded.mkdir(parents=True)
        self._start_redis()
        self._start_sshd()
        self._write_configs(kit)
        self.scheduler = process.Daemon(
            self.net.argv(RECORDER, kamado("scheduler", "run", "--config",
                                           str(layout.config(RECORDER)))),
            log=layout.base / "recorder" / "scheduler.log",
        )  # fmt: skip
        self.say(f"recorder: scheduler service, Redis and sshd on {RECORDER_ADDR}")
        self.agent = process.Daemon(
            self.net.argv(HOST, kamado("host", "run", "--config", str(layout.config(HOST)))),
            log=layout.base / "host" / "agent.log",
        )
        self.say(f"host: host agent on {HOST_ADDR}, VM {VM_NAME} defined in libvirt (embedded)")
        return self

    def _start_redis(self) -> None:
        directory = self.layout.redis
        directory.mkdir(parents=True)
        socket_path = directory / "redis.sock"
        argv = [
            REDIS_SERVER, "--bind", RECORDER_ADDR, "--port", str(REDIS_PORT),
            "--unixsocket", str(socket_path), "--unixsocketperm", "700",
            "--requirepass", self.password, "--dir", str(directory), "--appendonly", "yes",
            "--save", "", "--daemonize", "no", "--logfile", str(directory / "redis.log"),
        ]  # fmt: skip
        self.redis_proc = subprocess.Popen(self.net.argv(RECORDER, argv))
        self.client = redis.Redis(
            unix_socket_path=str(socket_path), password=self.password, decode_responses=True,
            socket_timeout=10,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.registry = Registry(self.client)

    def _start_sshd(self) -> None:
        server = SshdProcess(self.layout.ssh, SSH_PORT, address=RECORDER_ADDR).prepare()
        host_pub = server.host_key.with_suffix(".pub").read_text().split()
        # The guest knows the recorder by the address QEMU forwards.
        (self.layout.ssh / "guest_known_hosts").write_text(
            f"{GUEST_SSH} {host_pub[0]} {host_pub[1]}\n"
        )
        with server.log.open("ab") as log:
            server.proc = subprocess.Popen(
                self.net.argv(RECORDER, [SSHD, "-D", "-e", "-f", str(server.config)]),
                stdout=log,
                stderr=log,
            )
        self.sshd = server
        self.net.wait_tcp(HOST, RECORDER_ADDR, SSH_PORT)

    def _write_configs(self, kit: guest_kit.GuestKit) -> None:
        layout = self.layout
        user = self.sshd.user if self.sshd else "root"
        run = layout.base / "guest" / "run.sh"
        guest = layout.config("guest")
        guest.parent.mkdir(parents=True, exist_ok=True)
        guest.write_text(guest_config(layout, self.password, user))
        argv = " ".join(kamado("guest", "run", "--config", str(guest), "--hostname", GUEST_WORKER))
        run.write_text(
            'echo "kamado-guest: guest agent starts at $(date +%T.%N)"\n'
            f"mkdir -p /var/lib/kamado /var/tmp/kamado\nexec {argv}\n"
        )
        layout.config(RECORDER).write_text(recorder_config(layout, self.password))
        root = layout.embed_root
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
        host = layout.config(HOST)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(host_config(layout, self.password, guest_vm(layout, kit, run)))

    # -- the recorder's side --------------------------------------------------------------
    def record(self, name: str, seconds: float = 3.0) -> Path:
        """A 320x240 interlaced broadcast-like recording in the recorder's recorded/."""
        from worker.encode.sample import make_sample

        return make_sample(self.layout.recorded / name, seconds=seconds, width=320,
                           height=240, aspect="4:3", bframes=2)  # fmt: skip

    def hook(self, recording: Path, recorded_id: str) -> str:
        """Run EPGStation's finish hook on the recorder as EPGStation would; the job id."""
        env = epgstation_env(recording, recorded_id)
        argv = kamado("hook", "epgstation", "--config", str(self.layout.config(RECORDER)))
        done = self.net.run(RECORDER, argv, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"kamado hook epgstation exited {done.returncode}: {done.stderr}")
        source = f"sftp://recorder/{recording.name}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [r.id for r in self.jobs() if r.job.source == source]
            if found:
                return found[0]
            time.sleep(0.1)
        raise RuntimeError("the hook's delivery did not submit the job within 60 s")

    def jobs(self) -> list[JobRecord]:
        """Every job the recorder's registry holds."""
        assert self.registry is not None
        return self.registry.list()

    def job(self, job_id: str) -> JobRecord | None:
        """One job, with its attempts."""
        assert self.registry is not None
        return self.registry.get(job_id, with_history=True)

    # -- the host's side ------------------------------------------------------------------
    def qemu_pid(self) -> int | None:
        """The pid of the guest's QEMU while it runs."""
        for pidfile in self.layout.embed_root.rglob(f"{VM_NAME}.pid"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                os.kill(pid, 0)
                return pid
        return None

    def kill_qemu(self) -> int:
        """SIGKILL the guest's QEMU (a crashed VM); returns its pid."""
        pid = self.qemu_pid()
        if pid is None:
            raise RuntimeError("the guest's QEMU is not running")
        os.kill(pid, signal.SIGKILL)
        return pid

    def logs(self) -> str:
        """The end of every box's log, for an error message."""
        parts = []
        for name, daemon in (("scheduler", self.scheduler), ("host agent", self.agent)):
            if daemon is not None:
                parts.append(f"--- {name} ---\n{daemon.log_tail(30)}")
        serial = self.layout.serial_log
        if serial.exists():
            tail = serial.read_text("utf-8", "replace").splitlines()[-40:]
            parts.append("--- guest console ---\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- tear-down ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every process of every box and delete the namespaces (and the VM with them)."""
        for daemon in (self.agent, self.scheduler):
            if daemon is not None:
                daemon.stop(grace=10)
        if self.sshd is not None:
            self.sshd.stop()
        if self.redis_proc is not None:
            self.redis_proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.redis_proc.wait(10)
        if self.client is not None:
            self.client.close()
        # Whatever still runs in a box (QEMU, a hook's delivery) is killed with it.
        self.net.close()

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def epgstation_env(recpath: Path, recorded_id: str) -> dict[str, str]:
    """The variables EPGStation v2 gives recordingFinishCommand for one recording."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RECORDEDID": recorded_id, "PROGRAMID": "3273601024123", "CHANNELTYPE": "GR",
        "CHANNELID": "3273601024", "CHANNELNAME": "ＮＨＫ総合１・東京",
        "HALF_WIDTH_CHANNELNAME": "NHK総合1・東京", "STARTAT": "1700000000000",
        "ENDAT": "1700000003000", "DURATION": "3000", "NAME": recpath.stem,
        "HALF_WIDTH_NAME": recpath.stem, "DESCRIPTION": "null",
        "HALF_WIDTH_DESCRIPTION": "null", "EXTENDED": "null", "HALF_WIDTH_EXTENDED": "null",
        "RECPATH": str(recpath), "LOGPATH": "null", "ERROR_CNT": "0", "DROP_CNT": "0",
        "SCRAMBLING_CNT": "0",
    }  # fmt: skip
