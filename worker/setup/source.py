"""Where `kamado setup` finds what it installs: the checkout's deploy/ and this kamado binary."""

from __future__ import annotations

import sys
from pathlib import Path

from worker.setup.errors import SetupError

__all__ = ["deploy_dir", "kamado_binary"]

INSTALLED_CHECKOUT = Path("/opt/kamado/src")


def kamado_binary() -> str:
    """The `kamado` script of the venv this process runs from (what hooks and units call)."""
    return str(Path(sys.executable).parent / "kamado")


def deploy_dir(source: Path | None = None) -> Path:
    """The deploy/ folder of kamado's checkout: ``source``, the running code's, or /opt's."""
    candidates = [source] if source else [Path(__file__).resolve().parents[2], INSTALLED_CHECKOUT]
    for candidate in candidates:
        if candidate is not None and (candidate / "deploy" / "systemd").is_dir():
            return candidate / "deploy"
    shown = source or INSTALLED_CHECKOUT
    raise SetupError(
        f"{shown}: not a kamado checkout (no deploy/systemd); pass --source with the "
        "directory you cloned kamado into",
        path=shown,
    )
