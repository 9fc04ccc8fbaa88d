"""`kamado setup units`: the shipped units, this venv's binary, ReadWritePaths from the config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import KAMADO_SCRIPT, accounts, is_root
from tests.support.accounts import kamado as run_kamado

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)"),
]


@pytest.fixture
def account() -> Iterator[str]:
    with accounts("kmd-units") as (name,):
        yield name


def kamado(*args: str, account: str) -> subprocess.CompletedProcess[str]:
    """`kamado setup units` for a test account (the units' own user, made if missing)."""
    return run_kamado(*args, "--account", account)


ROOT = Path(__file__).resolve().parents[3]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def config(tmp_path: Path) -> Path:
    out = tmp_path / "encoded"
    nas = tmp_path / "nas"
    ro = tmp_path / "readonly"
    for d in (out, nas, ro):
        d.mkdir()
    path = tmp_path / "kamado.toml"
    path.write_text(
        f'[encode]\noutput_dir = "{out}"\n'
        f'[staging]\nscratch_dir = "/var/lib/kamado/scratch"\n'
        f'[staging.locations.nas]\nkind = "local"\npath = "{nas}"\n'
        f'[staging.locations.ro]\nkind = "local"\npath = "{ro}"\nwritable = false\n'
    )
    return path


def test_setup_units_installs_the_roles_units_with_this_binary_and_a_read_write_drop_in(
    tmp_path: Path,
    account: str,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cfg = config(tmp_path)
    argv = ["setup", "units", "--role", "worker", "--role", "recorder", "--config", str(cfg)]
    result = kamado(*argv, "--root", str(root), "--json", account=account)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["units"] == [
        "kamado-worker.service", "kamado-scheduler.service", "kamado-flower.service",
    ]  # fmt: skip
    units = root / "etc/systemd/system"
    worker = (units / "kamado-worker.service").read_text()
    assert f"ExecStart={KAMADO_SCRIPT} worker" in worker
    drop_in = (units / "kamado-worker.service.d/kamado-paths.conf").read_text()
    lines = [x for x in drop_in.splitlines() if x.startswith("ReadWritePaths=")]
    assert lines == [
        f"ReadWritePaths=-{tmp_path / 'encoded'}",
        f"ReadWritePaths=-{tmp_path / 'nas'}",
    ]
    # A recorder box: no unit may reset the shared spool's mode at its start.
    for unit in ("kamado-worker", "kamado-scheduler", "kamado-flower"):
        text = (units / f"{unit}.service.d/kamado-paths.conf").read_text()
        assert "StateDirectoryMode=2770\nUMask=0007\n" in text, unit
    scheduler = (units / "kamado-scheduler.service.d/kamado-paths.conf").read_text()
    assert "ReadWritePaths" not in scheduler
    assert any("daemon-reload" in a["what"] and not a["changed"] for a in data["actions"])
    again = json.loads(kamado(*argv, "--root", str(root), "--json", account=account).stdout)
    assert not again["changed"]


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian: systemd)"
)
def test_the_installed_units_and_drop_in_pass_systemd_analyze_verify(
    tmp_path: Path, account: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cfg = config(tmp_path)
    result = kamado(
        "setup",
        "units",
        "--role",
        "worker",
        "--config",
        str(cfg),
        "--root",
        str(root),
        account=account,
    )
    assert result.returncode == 0, result.stderr
    unit = root / "etc/systemd/system/kamado-worker.service"
    assert SYSTEMD_ANALYZE is not None
    # The unit path under the temp root comes first, so verify reads the drop-in as well.
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{unit.parent}:")
    (unit.parent / "kamado-worker.service.d/kamado-paths.conf").write_text(
        "[Service]\nReadWritePaths=-/srv\nBogusKey=1\n"
    )
    bogus = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert "BogusKey" in bogus.stderr  # the drop-in is read: the check can fail
    kamado(
        "setup",
        "units",
        "--role",
        "worker",
        "--config",
        str(cfg),
        "--root",
        str(root),
        account=account,
    )
    verify = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr


def test_setup_units_without_a_role_is_bad_input_and_writes_nothing(
    tmp_path: Path, account: str
) -> None:
    result = kamado("setup", "units", "--root", str(tmp_path), account=account)
    assert result.returncode == 2
    assert "--role" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_of_setup_units_lists_each_unit_and_writes_nothing(
    tmp_path: Path, account: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = kamado(
        "setup", "units", "--role", "host", "--role", "guest", "--config", str(config(tmp_path)),
        "--root", str(root), "--dry-run", "--json", account=account,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    changed = [a["what"] for a in json.loads(result.stdout)["actions"] if a["changed"]]
    assert changed[:5] == [
        f"group {account}", f"user {account}", "/etc/kamado", "/var/lib/kamado",
        "/etc/kamado/kamado.toml",
    ]  # fmt: skip
    assert changed[5:] == [
        "/etc/systemd/system/kamado-host-agent.service",
        "/etc/systemd/system/kamado-guest-agent.service",
        "/etc/systemd/system/kamado-guest-agent.service.d/kamado-paths.conf",
    ]
    assert list(root.iterdir()) == []


def test_a_state_or_scratch_dir_outside_the_units_state_directory_gets_a_read_write_path(
    tmp_path: Path,
    account: str,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cfg = tmp_path / "kamado.toml"
    cfg.write_text('state_dir = "/srv/kamado"\n[staging]\nscratch_dir = "/var/lib/kamado/s"\n')
    result = kamado(
        "setup", "units", "--role", "guest", "--config", str(cfg), "--root", str(root),
        account=account,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    drop_in = root / "etc/systemd/system/kamado-guest-agent.service.d/kamado-paths.conf"
    assert [x for x in drop_in.read_text().splitlines() if "=" in x] == [
        "ReadWritePaths=-/srv/kamado"
    ]


@pytest.mark.parametrize(
    ("role", "example"), [("host", "host.example.toml"), ("guest", "guest/kamado.guest.toml")]
)
def test_a_box_without_a_config_starts_from_its_roles_example_and_keeps_an_edited_one(
    tmp_path: Path, account: str, role: str, example: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    argv = ("setup", "units", "--role", role, "--config", str(empty), "--root", str(root))
    assert kamado(*argv, account=account).returncode == 0
    written = root / "etc/kamado/kamado.toml"
    assert written.read_text() == (ROOT / "deploy" / example).read_text()
    st = written.stat()
    from worker.setup.system import gid_of

    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid_of(account), 0o640)
    written.write_text("# mine\n")
    assert kamado(*argv, account=account).returncode == 0
    assert written.read_text() == "# mine\n"
