"""Network namespaces made for a run (a test, or the three-box tour): hosts joined by veth
pairs, deleted after.

Every name carries a random token, so parallel runs and leftovers of a killed run never
collide; only the namespaces made here are ever touched. Addresses are chosen by the
test and live only inside these namespaces.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

IP = "ip"
# Runs inside a namespace: connect until the port answers or the deadline passes.
_WAIT_TCP = """
import socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


def netns_problem() -> str:
    """Why this machine cannot make network namespaces here (empty when it can)."""
    name = f"kmdprobe{secrets.token_hex(3)}"
    try:
        made = subprocess.run([IP, "netns", "add", name], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot run `ip netns add`: {e}"
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.decode().strip()}"
    subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=10)
    return ""


class Netns:
    """A few hosts (one namespace each) and the veth links between them, owned by a test."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(2)
        self.hosts: dict[str, str] = {}  # host -> namespace name
        self.links: dict[tuple[str, str], tuple[str, str]] = {}  # (a, b) -> (dev in a, in b)

    def _ip(self, *args: str) -> None:
        done = subprocess.run([IP, *args], capture_output=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.decode().strip()}")

    def add(self, host: str) -> str:
        """Make the namespace of ``host`` with its loopback up; returns its name."""
        name = f"kmd-{self.token}-{host}"
        self._ip("netns", "add", name)
        self.hosts[host] = name
        self._ip("-n", name, "link", "set", "lo", "up")
        return name

    def link(self, a: str, a_addr: str, b: str, b_addr: str, prefix: int = 30) -> None:
        """Join hosts ``a`` and ``b`` with a veth pair addressed ``a_addr``/``b_addr``."""
        dev_a, dev_b = f"k{self.token}{a[:3]}{b[:3]}", f"k{self.token}{b[:3]}{a[:3]}"
        self._ip(
            "link", "add", dev_a, "netns", self.hosts[a],
            "type", "veth", "peer", "name", dev_b, "netns", self.hosts[b],
        )  # fmt: skip
        for host, dev, addr in ((a, dev_a, a_addr), (b, dev_b, b_addr)):
            self._ip("-n", self.hosts[host], "addr", "add", f"{addr}/{prefix}", "dev", dev)
            self._ip("-n", self.hosts[host], "link", "set", dev, "up")
        self.links[(a, b)] = (dev_a, dev_b)

    def device(self, host: str, peer: str) -> str:
        """The name of ``host``'s end of its link to ``peer``."""
        if (host, peer) in self.links:
            return self.links[(host, peer)][0]
        return self.links[(peer, host)][1]

    def argv(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return [IP, "netns", "exec", self.hosts[host], *argv]

    def run(
        self,
        host: str,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in ``host``'s namespace to completion; ``env`` replaces the environment."""
        return subprocess.run(
            self.argv(host, argv),
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def set_link(self, host: str, peer: str, *, up: bool) -> None:
        """Bring ``host``'s end of its link to ``peer`` up or down (a cable pulled)."""
        dev = self.device(host, peer)
        self._ip("-n", self.hosts[host], "link", "set", dev, "up" if up else "down")

    def shape(self, host: str, peer: str, rate: str | None) -> None:
        """Limit what ``host`` sends to ``peer`` to ``rate`` (tc tbf), or lift the limit."""
        dev = self.device(host, peer)
        argv = ["tc", "qdisc", "del", "dev", dev, "root"]
        if rate is not None:
            argv = ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate]
            argv += ["burst", "32kbit", "latency", "400ms"]
        done = self.run(host, argv, timeout=10)
        if done.returncode != 0 and rate is not None:
            raise RuntimeError(f"tc in {host}: {done.stderr.strip()}")

    def wait_tcp(self, host: str, address: str, port: int, timeout: float = 15.0) -> None:
        """Block until ``address:port`` accepts connections as seen from ``host``."""
        argv = [sys.executable, "-c", _WAIT_TCP, address, str(port), str(timeout)]
        done = self.run(host, argv, timeout=timeout + 10)
        if done.returncode != 0:
            raise RuntimeError(f"{address}:{port} not reachable from {host} after {timeout}s")

    def pids(self, host: str) -> list[int]:
        """Processes running in ``host``'s namespace."""
        done = subprocess.run(
            [IP, "netns", "pids", self.hosts[host]], capture_output=True, text=True, timeout=10
        )
        return [int(p) for p in done.stdout.split()]

    def close(self) -> None:
        """Kill what still runs in these namespaces and delete them (and their links)."""
        for host, name in list(self.hosts.items()):
            for pid in self.pids(host):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.pids(host) and time.monotonic() < deadline:
                time.sleep(0.05)
            subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=30)
            del self.hosts[host]
