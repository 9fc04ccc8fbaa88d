"""Fixtures for the host agent against real libvirt: the test driver and the embedded QEMU."""

from __future__ import annotations

import grp
import importlib.util
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from worker.settings.host import HostSettings

if TYPE_CHECKING:
    from host_agent.lifecycle import Hypervisor

# Without libvirt-python (the `host` extra) there is nothing here to run.
if importlib.util.find_spec("libvirt") is None:
    collect_ignore_glob = ["test_*.py"]

TEST_URI = "test:///default"
QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
"""


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s: {predicate}")


def validate_xml(xml: str, directory: Path) -> None:
    """Run libvirt's own virt-xml-validate on a domain XML; fail with its output."""
    path = directory / f"domain-{uuid.uuid4().hex[:8]}.xml"
    path.write_text(xml)
    result = subprocess.run(
        ["virt-xml-validate", str(path), "domain"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def vm_name() -> str:
    """A domain name no other test uses (test:///default is shared by the process)."""
    return f"kamado-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def observer() -> Iterator[Hypervisor]:
    """Our own connection to the shared test driver, to act behind the agent's back."""
    from host_agent.lifecycle import Hypervisor

    hypervisor = Hypervisor(TEST_URI)
    hypervisor.open()
    yield hypervisor
    hypervisor.close()


def host_settings(name: str, **overrides: Any) -> HostSettings:
    """Fast agent settings for a VM on the test driver."""
    data: dict[str, Any] = {
        "libvirt_uri": TEST_URI,
        "agent_name": f"agent-{name}",
        "poll_interval": 0.05,
        "idle_shutdown": 0.6,
        "shutdown_timeout": 2,
        "restart_backoff": 0.1,
        "restart_backoff_max": 1,
        "heartbeat_interval": 0.2,
        "vm": {"name": name, "cpu": {"model": "Haswell", "features": ["+x2apic"]}},
    }
    return HostSettings.model_validate(data | overrides)


def _embedded_driver_missing() -> str:
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (package qemu-system-x86)"
    if not Path(
        "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"
    ).exists():
        return "libvirt's QEMU driver is not installed (package libvirt-daemon-driver-qemu)"
    try:
        pwd.getpwnam("libvirt-qemu")
        grp.getgrnam("libvirt-qemu")
    except KeyError:
        return "the libvirt-qemu user and group are not installed (package libvirt-daemon-system)"
    return ""


@pytest.fixture(scope="session")
def embed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root for libvirt's embedded QEMU driver (qemu:///embed?root=DIR), no daemon."""
    missing = _embedded_driver_missing()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("libvirt-embed")
    (root / "etc").mkdir()
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
    return root


@pytest.fixture(scope="session")
def embedded(embed_root: Path) -> Iterator[Hypervisor]:
    """A connection to the embedded QEMU driver, shared by the session."""
    from host_agent.lifecycle import Hypervisor

    hypervisor = Hypervisor(f"qemu:///embed?root={embed_root}")
    hypervisor.open()
    yield hypervisor
    hypervisor.close()
