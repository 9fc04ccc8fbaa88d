"""Fixtures of the staging tests: a real sshd, a remote root it serves, staging settings."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sshd import SshdProcess, paramiko_key, start_sshd
from worker.settings.staging import StagingSettings


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdProcess]:
    """A real OpenSSH sshd on a free loopback port, shared by the staging tests."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """The directory the SFTP location `rec` serves (on this machine, through sshd)."""
    path = tmp_path / "remote"
    path.mkdir()
    return path


def make_settings(
    sshd: SshdProcess, remote: Path, scratch: Path, **extra: object
) -> StagingSettings:
    """Staging settings with one SFTP location `rec` rooted at ``remote``."""
    location = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "key_file": str(sshd.user_key),
        "known_hosts": str(sshd.known_hosts),
        "root": str(remote),
        "connect_timeout": 5,
        "io_timeout": 10,
    }
    location.update(extra.pop("location", {}))  # type: ignore[call-overload]
    data: dict[str, object] = {
        "scratch_dir": str(scratch),
        "min_free_mb": 0,
        "retries": 2,
        "retry_delay": 0.05,
        "locations": {"rec": location},
    }
    data.update(extra)
    return StagingSettings.model_validate(data)


def on_transport(
    transport: str, sshd: SshdProcess, remote: Path, tmp_path: Path
) -> StagingSettings:
    """Settings whose location `rec` goes through ``transport``: "openssh" or "paramiko"
    (a key path ssh would expand is what sends a location through paramiko)."""
    odd = {"key_file": str(paramiko_key(sshd, tmp_path / "keys"))}
    location = odd if transport == "paramiko" else {}
    return make_settings(sshd, remote, tmp_path / "scratch", location=location)


@pytest.fixture
def settings(sshd: SshdProcess, remote: Path, tmp_path: Path) -> StagingSettings:
    """Staging settings pointing at the test's sshd and remote directory."""
    return make_settings(sshd, remote, tmp_path / "scratch")


@pytest.fixture
def make_file() -> Callable[[Path, int], bytes]:
    """Write ``size`` random bytes to a path and return them."""

    def write(path: Path, size: int) -> bytes:
        data = os.urandom(size)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    return write


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[str, int], Path]]:
    """Mount size-limited tmpfs file systems (needs root); skip where mounting fails."""
    mounts: list[Path] = []

    def mount(name: str, size_kib: int) -> Path:
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            pytest.skip(f"tmpfs mounts are not available here: {done.stderr.decode().strip()}")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill_disk(directory: Path, spare: int = 0) -> Path:
    """Take every free byte of ``directory``'s file system except about ``spare`` bytes, as
    another program would; the file that holds them is returned."""
    hog = directory / "hog"
    with hog.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    if spare:
        os.truncate(hog, max(0, hog.stat().st_size - spare))
    return hog
