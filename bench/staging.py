"""SFTP throughput of kamado's staging against OpenSSH's scp, over loopback, in one run.

Starts a private sshd (as the staging tests do), writes a random file, then alternates
kamado pull / scp pull and kamado push / scp push for several repeats, and prints the
median throughput of each and kamado ÷ scp (target: at least 0.9). scp runs twice: with
OpenSSH's default cipher choice, and pinned to the cipher kamado negotiates (AES-GCM),
so the ratio shows both what users see and the protocol-handling overhead alone. kamado
uses the transport staging picks (OpenSSH's ``ssh -s sftp`` unless the key has a
passphrase); the first line says which.

    python bench/staging.py [--size-mib 512] [--repeats 5] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.sshd import SshdProcess
from worker.settings.staging import StagingSettings
from worker.staging.api import pull, stage_out
from worker.staging.connection import connect

MIB = 1024 * 1024
GCM = "aes128-gcm@openssh.com"


def make_source(path: Path, size: int) -> None:
    """Random (incompressible) bytes, written in 8 MiB blocks."""
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(8 * MIB, left))
            out.write(block)
            left -= len(block)


def timed(action: Callable[[], object], size: int) -> float:
    """MB/s of one run of ``action`` moving ``size`` bytes."""
    start = time.perf_counter()
    action()
    return size / (time.perf_counter() - start) / 1e6


def main() -> None:
    """Run the benchmark and print a table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: tmp)")
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="kamado-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        sshd = SshdProcess(base / "sshd").start()
        try:
            run(base, sshd, size, args.repeats)
        finally:
            sshd.stop()


def run(base: Path, sshd: SshdProcess, size: int, repeats: int) -> None:
    """The benchmark proper, against a running sshd."""
    remote = base / "remote"
    local = base / "local"
    remote.mkdir()
    local.mkdir()
    make_source(remote / "src.ts", size)
    make_source(local / "out.mp4", size)
    settings = StagingSettings.model_validate(
        {
            "scratch_dir": str(local / "scratch"),
            "min_free_mb": 0,
            "locations": {
                "rec": {
                    "kind": "sftp",
                    "host": "127.0.0.1",
                    "port": sshd.port,
                    "user": sshd.user,
                    "key_file": str(sshd.user_key),
                    "known_hosts": str(sshd.known_hosts),
                    "root": str(remote),
                }
            },
        }
    )
    scp = shutil.which("scp") or "/usr/bin/scp"
    ssh_opts = [
        "-q",
        "-P",
        str(sshd.port),
        "-i",
        str(sshd.user_key),
        "-o",
        f"UserKnownHostsFile={sshd.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
    ]
    at = f"{sshd.user}@127.0.0.1:"

    def scp_pull(*cipher: str) -> Callable[[], object]:
        argv = [scp, *ssh_opts, *cipher, at + str(remote / "src.ts"), str(local / "scp.ts")]
        return lambda: subprocess.run(argv, check=True)

    def scp_push(*cipher: str) -> Callable[[], object]:
        argv = [scp, *ssh_opts, *cipher, str(local / "out.mp4"), at + str(remote / "scp.mp4")]
        return lambda: subprocess.run(argv, check=True)

    def kamado_pull() -> None:
        pull(settings, "sftp://rec/src.ts", local / "kamado.ts")
        (local / "kamado.ts").unlink()

    def kamado_push() -> None:
        stage_out(settings, local / "out.mp4", "sftp://rec/kamado.mp4").commit()

    runs: dict[str, Callable[[], object]] = {
        "kamado pull": kamado_pull,
        "scp pull": scp_pull(),
        f"scp -c {GCM} pull": scp_pull("-c", GCM),
        "kamado push": kamado_push,
        "scp push": scp_push(),
        f"scp -c {GCM} push": scp_push("-c", GCM),
    }
    probe = connect(settings, "rec")
    print(f"kamado transport: {type(probe).__name__}")
    probe.close()
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):  # interleaved, so drift in machine load hits every tool alike
        for name, action in runs.items():
            figures[name].append(timed(action, size))
    print(f"{size // MIB} MiB over loopback SFTP, {repeats} repeats, median (min-max) MB/s")
    for name, values in figures.items():
        med = statistics.median(values)
        print(f"  {name:<36} {med:7.0f}  ({min(values):.0f}-{max(values):.0f})")
    for way in ("pull", "push"):
        ours = statistics.median(figures[f"kamado {way}"])
        plain = statistics.median(figures[f"scp {way}"])
        pinned = statistics.median(figures[f"scp -c {GCM} {way}"])
        print(
            f"kamado ÷ scp, {way}: {ours / plain:.2f} (default cipher), "
            f"{ours / pinned:.2f} (same cipher)"
        )


if __name__ == "__main__":
    main()
