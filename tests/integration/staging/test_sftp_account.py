"""An SFTP account as a guide creates it (shell nologin) on a real sshd with Debian's default
``Subsystem sftp /usr/lib/openssh/sftp-server``: kamado shows what the server sent and
points at ``internal-sftp``; with ``ForceCommand internal-sftp`` the same account works.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import accounts, add_user, is_root
from tests.support.sshd import PASSPHRASE, SshdProcess, require_sshd
from worker.settings.staging import StagingSettings
from worker.staging.connection import connect
from worker.staging.errors import UnreachableError
from worker.staging.sftp.openssh_files import OpenSshSession
from worker.staging.sftp.paramiko_files import SftpSession

pytestmark = pytest.mark.integration

DEBIAN_SFTP_SERVER = "/usr/lib/openssh/sftp-server"
NOLOGIN_SAYS = "This account is currently not available."


@pytest.fixture(scope="module")
def nologin_user() -> Iterator[str]:
    """A real system account whose login shell is /usr/sbin/nologin."""
    if not is_root() or not Path("/usr/sbin/nologin").is_file():
        pytest.skip("needs root (useradd) and /usr/sbin/nologin")
    with accounts("kamado-sftp") as (name,):
        add_user(name, shell="/usr/sbin/nologin")
        yield name


@pytest.fixture(scope="module")
def keys_dir() -> Iterator[Path]:
    """A directory every account can read: sshd reads authorized_keys as the user."""
    path = Path(tempfile.mkdtemp(prefix="kamado-sshd-keys-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_sshd(directory: Path, keys_dir: Path, *lines: str) -> SshdProcess:
    require_sshd()
    if not Path(DEBIAN_SFTP_SERVER).is_file():
        pytest.skip(f"{DEBIAN_SFTP_SERVER} is not installed (apt-get install openssh-sftp-server)")
    server = SshdProcess(
        directory,
        subsystem=DEBIAN_SFTP_SERVER,
        authorized_keys=keys_dir / f"{directory.name}.keys",
        config_lines=lines,
    ).start()
    server.authorized_keys.chmod(0o644)
    return server


@pytest.fixture
def debian_sshd(tmp_path: Path, keys_dir: Path) -> Iterator[SshdProcess]:
    """sshd as Debian ships it: the sftp subsystem runs through the user's login shell."""
    server = start_sshd(tmp_path / "debian", keys_dir)
    yield server
    server.stop()


def settings_for(
    sshd: SshdProcess, user: str, tmp_path: Path, **location: object
) -> StagingSettings:
    data = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": user,
        "key_file": str(sshd.user_key),
        "known_hosts": str(sshd.known_hosts),
        "root": "/tmp",
        "connect_timeout": 5,
        "io_timeout": 5,
    } | location
    return StagingSettings.model_validate(
        {"scratch_dir": str(tmp_path / "scratch"), "min_free_mb": 0, "locations": {"rec": data}}
    )


def assert_explains_nologin(error: UnreachableError, user: str) -> None:
    message = str(error)
    assert "packet type" not in message
    assert f"server sent {NOLOGIN_SAYS!r}" in message, message
    assert "ForceCommand internal-sftp" in message
    assert f"Match User {user}" in message
    assert "Subsystem sftp internal-sftp" in message


def test_nologin_account_over_openssh_shows_what_the_server_sent(
    debian_sshd: SshdProcess, nologin_user: str, tmp_path: Path
) -> None:
    settings = settings_for(debian_sshd, nologin_user, tmp_path)
    with pytest.raises(UnreachableError) as caught:
        connect(settings, "rec")
    assert_explains_nologin(caught.value, nologin_user)


def test_nologin_account_over_paramiko_shows_what_the_server_sent(
    debian_sshd: SshdProcess, nologin_user: str, tmp_path: Path
) -> None:
    locked = {"key_file": str(debian_sshd.locked_key), "key_passphrase": PASSPHRASE}
    settings = settings_for(debian_sshd, nologin_user, tmp_path, **locked)
    location = settings.locations["rec"]
    with pytest.raises(UnreachableError) as caught:
        SftpSession.connect("rec", location).close()  # type: ignore[arg-type]
    assert_explains_nologin(caught.value, nologin_user)


def test_the_match_block_kamado_suggests_makes_the_same_account_work(
    tmp_path: Path, keys_dir: Path, nologin_user: str
) -> None:
    block = (f"Match User {nologin_user}", "    ForceCommand internal-sftp")
    server = start_sshd(tmp_path / "fixed", keys_dir, *block)
    try:
        files = connect(settings_for(server, nologin_user, tmp_path), "rec")
        try:
            assert isinstance(files, OpenSshSession)
            assert files.stat("/tmp").is_dir
        finally:
            files.close()
    finally:
        server.stop()
    assert os.geteuid() == 0
