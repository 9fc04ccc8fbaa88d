"""A real OpenSSH sshd on a free port (loopback by default), its own host key, one user key."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.redis_proc import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


SSHD_MISSING = "OpenSSH sshd is not installed (apt-get install openssh-server)"


def sshd_available() -> bool:
    """True when OpenSSH's sshd and ssh-keygen are installed."""
    return Path(SSHD).is_file() and Path(SSH_KEYGEN).is_file()


# The one place the sshd tests skip from; under CI=true tests/conftest.py fails them instead.
needs_sshd = pytest.mark.skipif(not sshd_available(), reason=SSHD_MISSING)


def require_sshd() -> None:
    """Skip the calling test or fixture when sshd is missing (a failure under CI=true)."""
    if not sshd_available():
        pytest.skip(SSHD_MISSING)


def start_sshd(directory: Path) -> SshdProcess:
    """A started sshd serving SFTP from ``directory``'s keys; skips where sshd is missing."""
    require_sshd()
    return SshdProcess(directory).start()


PASSPHRASE = "kamado test passphrase"


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    """Write a new key pair at path (and path.pub), passphrase-less unless one is given."""
    argv = [SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-C", "kamado-test", "-f", str(path)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=30)
    return path


class SshdProcess:
    """One sshd in the foreground (-D) serving SFTP with internal-sftp, owned by a test."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        address: str = "127.0.0.1",
        subsystem: str = "internal-sftp",
        authorized_keys: Path | None = None,
        config_lines: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        # Debian's default is /usr/lib/openssh/sftp-server, run through the login shell.
        self.subsystem = subsystem
        # Another account's sshd reads this as that user: it must be readable by it.
        self.authorized_keys = authorized_keys or directory / "authorized_keys"
        self.config_lines = config_lines
        self.address = address  # listen here; known_hosts names the host by it
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = directory / "ssh_host_ed25519_key"
        self.user_key = directory / "id_ed25519"
        self.locked_key = directory / "id_ed25519_locked"  # protected by PASSPHRASE
        self.known_hosts = directory / "known_hosts"
        self.config = directory / "sshd_config"
        self.log = directory / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def prepare(self) -> SshdProcess:
        """Generate the keys, authorized_keys, known_hosts and sshd_config (once)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            keygen(self.host_key)
            keygen(self.user_key)
        if not self.locked_key.exists():
            keygen(self.locked_key, passphrase=PASSPHRASE)
        authorized = self.authorized_keys
        keys = (self.user_key, self.locked_key)
        authorized.write_text("".join(Path(f"{key}.pub").read_text() for key in keys))
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        self.known_hosts.write_text(f"{name} {host_pub[0]} {host_pub[1]}\n")
        # sshd refuses to start without its privilege-separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.address}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "StrictModes no",
                    "UsePAM no",
                    "UseDNS no",
                    "MaxStartups 100",
                    "MaxSessions 50",
                    "LogLevel ERROR",
                    f"Subsystem sftp {self.subsystem}",
                    *self.config_lines,
                    "",
                ]
            )
        )
        return self

    def start(self) -> SshdProcess:
        """Start sshd and wait until it answers with its banner."""
        self.prepare()
        argv = [SSHD, "-D", "-e", "-f", str(self.config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the port answers with an SSH banner, or raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text(errors='replace')[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.address, self.port), timeout=0.5) as s,
            ):
                if s.recv(64).startswith(b"SSH-2.0"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sshd on port {self.port} not ready after {timeout}s")

    def session_pids(self) -> list[int]:
        """Pids of the sshd children serving connections right now."""
        if self.proc is None:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
        return pids

    def kill_sessions(self) -> int:
        """SIGKILL every connection's sshd (a dropped link); returns how many were killed."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        """Stop the listener and any sessions it still serves."""
        self.kill_sessions()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def paramiko_key(sshd: SshdProcess, directory: Path) -> Path:
    """A copy of the user key at a path holding a character ssh would expand (``%``):
    kamado sends such a location through its paramiko transport, the one way left to
    choose it now that keys with a passphrase go through OpenSSH too."""
    odd = directory / "id 100%"
    odd.parent.mkdir(parents=True, exist_ok=True)
    odd.write_bytes(sshd.user_key.read_bytes())
    odd.chmod(0o600)
    return odd
