"""The guest image recipe: the script's syntax, a dry run into a temp root, cloud-init."""

from __future__ import annotations

import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from worker.settings.model import load_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
GUEST = REPO / "deploy" / "guest"
UNIT = REPO / "deploy" / "systemd" / "kamado-guest-agent.service"
PACKAGES = {
    "ffmpeg",
    "libavcodec-extra",
    "i965-va-driver",
    "vainfo",
    "qemu-guest-agent",
    "python3-venv",
}


def dry_run(root: Path, *args: str) -> tuple[list[list[str]], str]:
    done = subprocess.run(
        ["bash", str(GUEST / "provision.sh"), "--root", str(root), "--dry-run", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    commands = [
        shlex.split(line.removeprefix("would run:"))
        for line in done.stdout.splitlines()
        if line.startswith("would run:")
    ]
    return commands, done.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_provisioning_script_parses() -> None:
    subprocess.run(["bash", "-n", str(GUEST / "provision.sh")], check=True, timeout=30)


def test_a_dry_run_writes_unit_and_config_into_the_root_and_lists_every_command(
    tmp_path: Path,
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "debian_version").write_text("12.8\n")
    commands, stderr = dry_run(tmp_path)
    assert "warning" not in stderr

    unit = tmp_path / "etc/systemd/system/kamado-guest-agent.service"
    assert unit.read_text() == UNIT.read_text()
    config = tmp_path / "etc/kamado/kamado.toml"
    assert mode(config) == 0o640
    assert mode(tmp_path / "etc/kamado/kamado.env") == 0o600
    assert load_settings(config).guest.hardware_failure_limit == 3

    install = next(c for c in commands if "install" in c and "apt-get" in c)
    assert install[:2] == ["chroot", str(tmp_path)]
    assert PACKAGES | {"intel-media-va-driver"} <= set(install)
    useradd = next(c for c in commands if "useradd" in c)
    assert useradd[useradd.index("--groups") + 1] == "render,video"
    assert useradd[-1] == "kamado"
    assert ["systemctl", f"--root={tmp_path}", "enable", "kamado-guest-agent.service"] in commands
    pip = next(c for c in commands if c[-1].endswith(".whl") and "install" in c)
    assert pip[2] == "/opt/kamado/venv/bin/pip"
    # Stock Debian 12 has no pip outside a venv: the wheel is built in one.
    build = next(c for c in commands if "wheel" in c and "--no-deps" in c)
    assert build[0].endswith("/venv/bin/pip")
    state = ["chroot", str(tmp_path), "install", "-d", "-o", "kamado", "-g", "kamado"]
    assert [*state, "-m", "0750", "/var/lib/kamado"] in commands, "guest probe by hand needs it"
    # The host agent finds the worker as celery@<hostname>; host.vm.name is kamado-gpu.
    assert (tmp_path / "etc/hostname").read_text() == "kamado-gpu\n"
    mounts = [c[-1] for c in commands if c[0] == "mount"]
    unmounts = [c[-1] for c in commands if c[0] == "umount"]
    assert sorted(mounts) == sorted(unmounts), "every bind mount is undone"


def test_non_free_swaps_in_the_encoding_ihd_driver_and_its_apt_component(tmp_path: Path) -> None:
    commands, _ = dry_run(tmp_path, "--non-free")
    install = next(c for c in commands if "install" in c and "apt-get" in c)
    assert "intel-media-va-driver-non-free" in install
    assert "intel-media-va-driver" not in install
    sources = (tmp_path / "etc/apt/sources.list.d/kamado-non-free.sources").read_text()
    assert "Components: non-free non-free-firmware" in sources


def test_an_existing_config_is_kept(tmp_path: Path) -> None:
    config = tmp_path / "etc/kamado/kamado.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[guest]\ntake_software_work = true\n")
    dry_run(tmp_path, "--skip-packages")
    assert config.read_text() == "[guest]\ntake_software_work = true\n"


def test_a_dry_run_without_a_root_is_refused() -> None:
    done = subprocess.run(
        ["bash", str(GUEST / "provision.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "--dry-run needs --root" in done.stderr


def test_cloud_init_user_data_parses_and_carries_the_same_unit_and_config() -> None:
    yaml = pytest.importorskip("yaml")
    text = (GUEST / "user-data.yaml").read_text()
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert set(data["packages"]) >= PACKAGES
    kamado = next(u for u in data["users"] if isinstance(u, dict) and u["name"] == "kamado")
    assert {"render", "video"} <= set(kamado["groups"])
    files = {f["path"]: f for f in data["write_files"]}
    assert files["/etc/systemd/system/kamado-guest-agent.service"]["content"] == UNIT.read_text()
    config = files["/etc/kamado/kamado.toml"]["content"]
    assert config == (GUEST / "kamado.guest.toml").read_text()
    assert files["/etc/kamado/kamado.env"]["permissions"] == "0600"
    assert all(isinstance(step, list) for step in data["runcmd"]), "argv lists, no shell strings"
    assert ["systemctl", "enable", "--now", "kamado-guest-agent.service"] in data["runcmd"]
    assert data["hostname"] == "kamado-gpu"
    assert ["install", "-d", "-o", "kamado", "-g", "kamado", "-m", "0750", "/var/lib/kamado"] in (
        data["runcmd"]
    )


def test_the_recipe_installs_what_the_generation_table_lists(tmp_path: Path) -> None:
    from worker.backends.generations import packages

    for flag, non_free in (((), False), (("--non-free",), True)):
        root = tmp_path / str(non_free)
        (root / "etc").mkdir(parents=True)
        commands, _ = dry_run(root, *flag)
        install = next(c for c in commands if "install" in c and "apt-get" in c)
        listed = install[install.index("--no-install-recommends") + 1 :]
        assert listed[: len(packages(non_free=non_free))] == packages(non_free=non_free)


def test_cloud_init_lists_the_generation_tables_free_packages() -> None:
    yaml = pytest.importorskip("yaml")
    from worker.backends.generations import packages

    data = yaml.safe_load((GUEST / "user-data.yaml").read_text())
    assert set(packages(non_free=False)) <= set(data["packages"])


def test_the_dockerfile_copies_what_the_table_needs_to_run_before_kamado_is_installed(
    tmp_path: Path,
) -> None:
    import re
    import sys

    from worker.backends.generations import packages

    text = (REPO / "Dockerfile").read_text()
    copies = re.findall(r"^COPY ((?:worker/\S+[ \\\n]+)+)/tmp/table/(\S+)/$", text, re.M)
    assert copies, "the Dockerfile copies the table before its apt-get"
    for names, into in copies:
        for name in names.replace("\\", " ").split():
            assert name.startswith(into + "/"), f"{name}: copied to another folder than its own"
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes((REPO / name).read_bytes())
    done = subprocess.run(
        [sys.executable, "-S", "-m", "worker.backends.generations", "packages", "--non-free"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == packages(non_free=True)
    assert "python3 -m worker.backends.generations packages $flag" in text
