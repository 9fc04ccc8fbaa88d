"""`kamado locations check` run as a real subprocess against a real sshd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis_proc import free_port
from tests.support.sshd import SshdProcess

pytestmark = pytest.mark.integration


def kamado(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI with no inherited KAMADO_* settings."""
    exe = shutil.which("kamado", path=str(Path(sys.executable).parent)) or "kamado"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def sftp_block(name: str, sshd: SshdProcess, root: Path, **over: object) -> str:
    values: dict[str, object] = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "key_file": str(sshd.user_key),
        "known_hosts": str(sshd.known_hosts),
        "root": str(root),
        "connect_timeout": 3,
    }
    values.update(over)
    lines = [f"[staging.locations.{name}]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_config(path: Path, scratch: Path, *blocks: str) -> Path:
    text = f'[staging]\nscratch_dir = "{scratch}"\nmin_free_mb = 1\n\n' + "\n".join(blocks)
    path.write_text(text)
    return path


def test_check_passes_for_a_reachable_writable_sftp_and_local_location(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    local = f'[staging.locations.nas]\nkind = "local"\npath = "{mount}"\n'
    config = write_config(
        tmp_path / "k.toml", tmp_path / "scratch", sftp_block("rec", sshd, remote), local
    )
    done = kamado("locations", "check", "--json", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["locations"] == ["nas", "rec", "scratch"]
    checks = {(r["location"], r["check"]) for r in report["results"] if r["ok"]}
    for check in ("reachable", "host key", "auth", "read", "write", "space"):
        assert ("rec", check) in checks
    assert list(remote.iterdir()) == [], "the write probe is removed"


def test_check_reports_each_broken_location_with_its_fix_and_exits_1(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    config = write_config(
        tmp_path / "k.toml",
        tmp_path / "scratch",
        sftp_block("good", sshd, remote),
        sftp_block("nokey", sshd, remote, known_hosts=str(empty)),
        sftp_block("down", sshd, remote, port=free_port()),
        sftp_block("gone", sshd, remote / "missing"),
    )
    done = kamado("locations", "check", "--json", "--config", str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    failed = {r["location"]: r for r in json.loads(done.stdout)["results"] if not r["ok"]}
    assert set(failed) == {"nokey", "down", "gone"}
    assert failed["nokey"]["check"] == "host key" and "SHA256:" in failed["nokey"]["detail"]
    assert failed["down"]["check"] == "reachable"
    assert failed["gone"]["check"] == "read" and "missing" in failed["gone"]["detail"]
    assert all(r["fix"] for r in failed.values())

    table = kamado("locations", "check", "--config", str(config))
    assert table.returncode == 1
    assert "FAIL" in table.stdout and "fix:" in table.stdout


def test_a_misspelt_location_key_is_a_config_error_exit_2(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "k.toml", tmp_path / "scratch", sftp_block("rec", sshd, remote, hots="x")
    )
    done = kamado("locations", "check", "--config", str(config))
    assert done.returncode == 2
    assert "hots" in done.stderr
