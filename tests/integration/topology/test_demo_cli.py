"""`kamado demo --topology` where a part is missing: it names the part and how to get it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.tour import rig

pytestmark = pytest.mark.integration


def demo(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "worker.cli.main", "demo", "--topology"]
    environ = os.environ | {"KAMADO_STATE_DIR": str(tmp_path / "state")} | env
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=environ)


def test_without_the_guest_kernel_it_says_how_to_get_one_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the tour checks for root first")
    empty = tmp_path / "kit"
    empty.mkdir()
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    done = demo(tmp_path, KAMADO_TEST_GUEST_DIR=str(empty))
    assert done.returncode != 0
    error = " ".join(done.stderr.split())
    assert "the three-box tour cannot run here" in error
    assert f"apt-get download linux-image-6.1.0-NN-amd64` in {empty}" in error
    assert list(empty.iterdir()) == []
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert after == before


def test_every_missing_part_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check of rig.missing, made to fail in turn on this machine's real paths."""
    if os.geteuid() != 0:
        pytest.skip("the tour checks for root first")
    cases = {
        "REDIS_SERVER": "apt-get install redis-server",
        "SOCAT": "apt-get install socat",
        "QEMU": "apt-get install qemu-system-x86",
        "QEMU_DRIVER": "apt-get install libvirt-daemon-driver-qemu",
    }
    for name, words in cases.items():
        with monkeypatch.context() as m:
            m.setattr(rig, name, Path("/nonexistent") / name.lower())
            assert words in rig.missing(), name
