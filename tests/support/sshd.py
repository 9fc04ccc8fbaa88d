"""A real OpenSSH sshd on a free port (loopback by default), its own host key, one user key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.tour import sshd as tour_sshd
from worker.tour.sshd import SSH_KEYGEN, SSHD, keygen, sshd_available

__all__ = ["SSHD", "SSH_KEYGEN", "SshdProcess", "keygen", "sshd_available"]


SSHD_MISSING = "OpenSSH sshd is not installed (apt-get install openssh-server)"


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


class SshdProcess(tour_sshd.SshdProcess):
    """The tour's sshd, also accepting a key protected by PASSPHRASE (``locked_key``)."""

    def __init__(self, directory: Path, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(directory, port, **kwargs)
        self.locked_key = directory / "id_ed25519_locked"

    def client_keys(self) -> list[Path]:
        if not self.locked_key.exists():
            keygen(self.locked_key, passphrase=PASSPHRASE)
        return [*super().client_keys(), self.locked_key]


def paramiko_key(sshd: SshdProcess, directory: Path) -> Path:
    """A copy of the user key at a path holding a character ssh would expand (``%``):
    kamado sends such a location through its paramiko transport, the one way left to
    choose it now that keys with a passphrase go through OpenSSH too."""
    odd = directory / "id 100%"
    odd.parent.mkdir(parents=True, exist_ok=True)
    odd.write_bytes(sshd.user_key.read_bytes())
    odd.chmod(0o600)
    return odd
