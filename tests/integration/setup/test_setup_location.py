"""`kamado setup location` against a real sshd: keys, known_hosts, and the blocks it prints work."""

from __future__ import annotations

import contextlib
import json
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.accounts import accounts, is_root, kamado
from tests.support.sshd import SSH_KEYGEN, SSHD, SshdProcess, needs_sshd

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)"),
    needs_sshd,
]


@pytest.fixture
def sshd(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = SshdProcess(tmp_path / "sshd").start()
    yield server
    server.stop()


def setup_location(root: Path, account: str, sshd: SshdProcess, remote: Path, *extra: str):  # type: ignore[no-untyped-def]
    return kamado(
        "setup", "location", "recorder", "--host", "127.0.0.1", "--port", str(sshd.port),
        "--remote-dir", str(remote), "--root", str(root), "--account", account,
        "--user", account, "--json", *extra,
    )  # fmt: skip


def test_setup_location_makes_a_key_kamado_reads_and_pins_the_hosts_real_key(
    tmp_path: Path, sshd: SshdProcess
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with accounts("kmd-svc") as (account,):
        result = setup_location(root, account, sshd, Path("/srv/recorded"))
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        key = root / "etc/kamado/recorder_ed25519"
        from worker.setup.system import gid_of, uid_of

        st = key.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
            uid_of(account),
            gid_of(account),
            0o600,
        )
        expected = subprocess.run(
            [SSH_KEYGEN, "-l", "-f", f"{sshd.host_key}.pub"], capture_output=True, text=True,
            check=True,
        ).stdout.split()[1]  # fmt: skip
        assert expected in [k["fingerprint"] for k in data["host_keys"]]
        host_blob = Path(f"{sshd.host_key}.pub").read_text().split()[1]
        known = (root / "etc/kamado/known_hosts").read_text()
        assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 {host_blob}" in known
        pastes = {p["where"]: p["text"] for p in data["paste"]}
        toml = pastes["/etc/kamado/kamado.toml on this worker"]
        assert "[staging.locations.recorder]" in toml and 'root = "/srv/recorded"' in toml
        path_map = pastes["/etc/kamado/kamado.toml on the recorder"]
        assert 'target = "sftp://recorder"' in path_map
        again = json.loads(setup_location(root, account, sshd, Path("/srv/recorded")).stdout)
        assert not again["changed"], [a for a in again["actions"] if a["changed"]]


def test_a_host_key_that_changed_is_refused_with_the_fingerprint_and_exit_1(
    tmp_path: Path, sshd: SshdProcess
) -> None:
    root = tmp_path / "root"
    (root / "etc/kamado").mkdir(parents=True)
    other = tmp_path / "other"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    blob = Path(f"{other}.pub").read_text().split()[1]
    known = root / "etc/kamado/known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {blob}\n")
    with accounts("kmd-svc") as (account,):
        result = setup_location(root, account, sshd, Path("/srv"))
        assert result.returncode == 1
        assert "different ssh-ed25519 key" in result.stderr and "SHA256:" in result.stderr
        assert known.read_text() == f"[127.0.0.1]:{sshd.port} ssh-ed25519 {blob}\n"


def test_the_printed_match_block_serves_sftp_to_a_nologin_account_with_strict_modes(
    tmp_path: Path, sshd: SshdProcess
) -> None:
    """The blocks pasted as printed (paths moved under tmp) let kamado's own check pass."""
    # The account reads its keys and the recordings itself, and StrictModes wants every
    # directory above them root-owned and not world-writable: not under /tmp.
    box = Path(tempfile.mkdtemp(prefix="kamado-test-", dir="/run"))
    box.chmod(0o755)
    remote = box / "recorded"
    with accounts("kmd-sftp") as (account,), contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, box, True)
        root = box / "root"
        root.mkdir(mode=0o755)
        result = setup_location(root, account, sshd, remote)
        assert result.returncode == 0, result.stderr
        pastes = {p["title"].split(" (")[0]: p["text"] for p in json.loads(result.stdout)["paste"]}
        # The account setup made has a nologin shell, as on the recorder; unlock it for keys
        # (Debian's sshd does that through PAM, this test's sshd runs without PAM).
        subprocess.run(["usermod", "-p", "*", account], check=True)
        remote.mkdir(mode=0o775)
        subprocess.run(["chown", f"{account}:{account}", str(remote)], check=True)
        keys_dir = box / "authorized_keys"
        keys_dir.mkdir(mode=0o755)
        pub = (root / "etc/kamado/recorder_ed25519.pub").read_text().strip()
        (keys_dir / account).write_text(f"restrict {pub}\n")
        match = next(t for k, t in pastes.items() if k.startswith("SFTP without a login shell"))
        match = match.replace("/etc/ssh/authorized_keys", str(keys_dir))
        config = (
            sshd.config.read_text()
            .replace("StrictModes no", "StrictModes yes")
            .replace("LogLevel ERROR", "LogLevel VERBOSE")
        )
        sshd.config.write_text(config + match)
        sshd.stop()  # the same port and host key, the new config
        with sshd.log.open("ab") as log:
            sshd.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(sshd.config)], stderr=log)
        sshd.wait_ready()
        toml = next(t for k, t in pastes.items() if k == "the location")
        toml = toml.replace("/etc/kamado", str(root / "etc/kamado"))
        scratch = box / "scratch"
        scratch.mkdir()
        shutil.chown(scratch, account, account)
        cfg = box / "worker.toml"
        cfg.write_text(f'[staging]\nscratch_dir = "{scratch}"\nmin_free_mb = 0\n{toml}')
        check = kamado("locations", "check", "--config", str(cfg), "--json")
        results = json.loads(check.stdout)["results"]
        assert check.returncode == 0, (results, sshd.log.read_text()[-2000:])
        assert {r["check"] for r in results if r["location"] == "recorder"} >= {"auth", "write"}


def test_a_dry_run_scans_the_host_but_creates_no_account_key_or_file(
    tmp_path: Path, sshd: SshdProcess
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with accounts("kmd-svc") as (account,):
        result = setup_location(root, account, sshd, Path("/srv"), "--dry-run")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["dry_run"] and data["host_keys"]
        assert any("ssh-keygen" in " ".join(a["argv"]) for a in data["actions"] if a["changed"])
        assert list(root.iterdir()) == []
        from worker.setup.system import group_exists, user_exists

        assert not user_exists(account) and not group_exists(account)
