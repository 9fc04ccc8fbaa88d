"""docs/deploy.md re-walked: its marked commands run against real accounts, Redis and a worker.

What this machine cannot do is skipped by an explicit rule with its reason (no systemd
as PID 1, no network for apt or git, no VT-d or Intel GPU), so a new kind of command in
the guide fails here until the walk knows it. Files go under a temporary root, accounts
get unique names and are removed; the machine's /etc is never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import KAMADO_SCRIPT, accounts, add_user, is_root, kamado
from tests.support.guide import (
    KNOWN,
    ROOT,
    blocks,
    commands,
    option_value,
    replace_option,
)
from tests.support.redis_proc import REDIS_SERVER, free_port
from worker.sample import make_sample
from worker.setup.units import ROLE_UNITS, SHIPPED_BINARY

pytestmark = pytest.mark.integration

UNITS = {p.name.removesuffix(".service") for p in (ROOT / "deploy/systemd").glob("*.service")}
SKIPPED = {
    "apt-get": "installs packages (no network here)",
    "git": "this checkout is the clone",
    "python3": "this venv is the venv",
    "/opt/kamado/venv/bin/pip": "this venv has this checkout installed",
    "ln": "links /usr/local/bin/kamado (the install test checks the line)",
    "usermod": "adds kamado to host groups (libvirt, render) this machine lacks",
}


def test_every_walk_block_exists_and_every_command_is_one_the_walk_knows() -> None:
    found = blocks()
    assert set(found) >= {
        "install", "install-host", "recorder", "recorder-check", "flower", "host", "guest",
        "worker", "onebox", "onebox-config",
    }  # fmt: skip
    for name, (lang, body) in found.items():
        if lang == "toml":
            tomllib.loads(body)
            continue
        assert lang == "sh", name
        for argv in commands(body):
            assert argv[0] in KNOWN, f"walk {name}: the walk does not know {argv[0]!r}"


def test_every_documented_kamado_command_and_option_exists() -> None:
    """Commands this machine cannot run (host preflight, guest probe) are checked by --help."""
    for name, (lang, body) in blocks().items():
        if lang != "sh":
            continue
        for argv in commands(body):
            if argv[0] != "kamado":
                continue
            words = [a for a in argv[1:3] if not a.startswith("-")]
            if words and words[0] in ("setup", "host", "guest", "config", "locations"):
                words = words[:2]
            else:
                words = words[:1]
            result = kamado(*words, "--help", env={"COLUMNS": "200"})
            assert result.returncode == 0, f"walk {name}: kamado {' '.join(words)}: {result.stderr}"
            for option in (a.split("=")[0] for a in argv if a.startswith("--")):
                assert option in result.stdout, f"walk {name}: {' '.join(argv)}: no {option}"


def test_the_install_steps_install_this_checkout_and_link_the_venvs_kamado() -> None:
    argvs = commands(blocks()["install"][1]) + commands(blocks()["install-host"][1])
    pips = [a for a in argvs if a[0].endswith("/bin/pip")]
    assert pips and all(a[1] == "install" and a[2].startswith("/opt/kamado/src") for a in pips)
    assert all(a[0] == str(Path(SHIPPED_BINARY).parent / "pip") for a in pips)
    links = [a for a in argvs if a[0] == "ln"]
    assert links == [["ln", "-sf", SHIPPED_BINARY, "/usr/local/bin/kamado"]]
    installs = [p for a in argvs if a[:2] == ["apt-get", "install"] for p in a[2:]]
    assert {"git", "python3-venv", "libvirt-dev", "pkg-config", "gcc", "python3-dev"} <= set(
        installs
    )
    venv = next(a for a in argvs if a[0] == "python3")
    assert venv == ["python3", "-m", "venv", str(Path(SHIPPED_BINARY).parents[1])]


def test_every_unit_the_guide_starts_is_one_setup_units_installs() -> None:
    installed = {u.removesuffix(".service") for units in ROLE_UNITS.values() for u in units}
    assert installed == UNITS
    for name, (lang, body) in blocks().items():
        for argv in commands(body) if lang == "sh" else []:
            if argv[0] == "systemctl" and argv[1] in ("enable", "restart"):
                named = [a for a in argv[2:] if not a.startswith("-")]
                assert set(named) <= UNITS | {"redis-server"}, f"walk {name}: {argv}"


@pytest.fixture
def box() -> Iterator[Path]:
    """The temporary root: other users may enter it (unlike root's /tmp/pytest-of-root)."""
    path = Path(tempfile.mkdtemp(prefix="kamado-walk-", dir="/run"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Walk:
    """Runs the guide's commands for one box under ``root`` with test accounts and ports."""

    def __init__(self, root: Path, account: str, hook_user: str) -> None:
        self.root = root
        self.account = account
        self.hook_user = hook_user
        self.redis_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.setup_output: dict[str, dict] = {}  # type: ignore[type-arg]
        self.env = {"HOME": str(root / "home"), "COLUMNS": "200"}

    def etc(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def config(self) -> Path:
        return self.etc("/etc/kamado/kamado.toml")

    def run(self, argv: list[str]) -> None:
        program = argv[0]
        if program in SKIPPED:
            return
        if program == "systemctl":
            self.systemctl(argv[1:])
            return
        assert program == "kamado", argv
        self.kamado(argv[1:])

    def kamado(self, args: list[str]) -> None:
        if option_value(args, "--recorder-user") == "epgstation":
            args = replace_option(args, "--recorder-user", self.hook_user)
        if option_value(args, "--hook-user") == "epgstation":
            args = replace_option(args, "--hook-user", self.hook_user)
        if args[0] == "setup":
            args = [*args, "--root", str(self.root)]
            if args[1] in ("recorder", "location"):
                args += ["--account", self.account]
            if args[1] == "units":
                args += ["--config", str(self.config)]
            args.append("--json")
        elif args[0] == "doctor":
            args += ["--config", str(self.config), "--service-user", self.account, "--json"]
            args += ["--env-file", str(self.etc("/etc/kamado/kamado.env"))]
        elif args[0] == "config":
            args = [*args, str(self.config)]
            args = [a if a != "/etc/kamado/kamado.env" else str(self.etc(a)) for a in args]
        result = kamado(*args, env=self.env)
        if args[0] == "doctor" and result.returncode == 1:
            self.expect_only_machine_findings(json.loads(result.stdout)["findings"])
            return
        assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
        if args[0] == "setup":
            self.setup_output[args[1]] = json.loads(result.stdout)
            if args[1] == "recorder":
                self.localise_config()

    def expect_only_machine_findings(self, findings: list[dict[str, str]]) -> None:
        """The one failure allowed: this test venv's Python is one the hook user cannot run."""
        failed = [f for f in findings if f["severity"] == "fail"]
        assert [f["check"] for f in failed] == ["hook command"], failed
        interpreter = str(Path(sys.executable).resolve())
        probe = ["runuser", "-u", self.hook_user, "--", "test", "-x", interpreter]
        assert subprocess.run(probe, timeout=30).returncode != 0, failed

    def localise_config(self) -> None:
        """The written config as it must read here: this root's state dir, Redis's port."""
        text = self.config.read_text()
        text = text.replace('"/var/lib/kamado"', f'"{self.etc("/var/lib/kamado")}"')
        data = tomllib.loads(text)
        url = data["broker_url"]
        host_port = url.split("@", 1)[1].split("/", 1)[0]
        text = text.replace(host_port, f"127.0.0.1:{self.redis_port}")
        self.config.write_text(text)

    def systemctl(self, args: list[str]) -> None:
        """No systemd here: start what the units would start, from their own lines."""
        names = [a for a in args[1:] if not a.startswith("-")]
        for name in names:
            if name == "redis-server":
                self.start_redis()
            elif args[0] in ("enable", "restart") and name in ("kamado-scheduler", "kamado-worker"):
                self.start_unit(name)
            # kamado-flower: tests/integration/admin/test_flower.py runs it for real

    def start_redis(self) -> None:
        conf = self.etc("/etc/redis/kamado.conf")
        data = self.root / "redis-data"
        data.mkdir(exist_ok=True)
        argv = [
            REDIS_SERVER, str(conf), "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--dir", str(data), "--daemonize", "no", "--logfile", str(data / "redis.log"),
        ]  # fmt: skip
        self.procs.append(subprocess.Popen(argv))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = kamado("doctor", "--role", "worker", "--config", str(self.config), "--json",
                           "--env-file", "/dev/null", env=self.env)  # fmt: skip
            findings = json.loads(probe.stdout)["findings"] if probe.stdout else []
            if any(f["check"] == "broker" and f["severity"] == "ok" for f in findings):
                return
            time.sleep(0.2)
        raise AssertionError((data / "redis.log").read_text())

    def start_unit(self, name: str) -> None:
        """The unit's ExecStart with its Environment= and EnvironmentFile=, under root."""
        unit = self.etc(f"/etc/systemd/system/{name}.service").read_text()
        env = dict(self.env)
        argv: list[str] = []
        for line in unit.splitlines():
            key, _, value = line.partition("=")
            if key == "ExecStart":
                argv = value.split()
            elif key == "Environment":
                name_, _, val = value.partition("=")
                env[name_] = str(self.etc(val)) if val.startswith("/etc/") else val
            elif key == "EnvironmentFile":
                path = self.etc(value.lstrip("-"))
                for row in path.read_text().splitlines() if path.is_file() else []:
                    if "=" in row and not row.startswith("#"):
                        k, _, v = row.partition("=")
                        env[k] = v
        env.pop("KAMADO_STATE_DIR", None)  # the TOML's state_dir is the one truth
        assert argv and argv[0] == str(KAMADO_SCRIPT), argv
        from tests.support.workers import environ_without_kamado

        with (self.root / f"{name}.log").open("ab") as log:
            self.procs.append(
                subprocess.Popen(argv, env=environ_without_kamado() | env, stdout=log, stderr=log)
            )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)")
@pytest.mark.timeout(600)
def test_the_one_box_guide_walked_takes_a_recording_from_the_hook_to_a_verified_mp4(
    box: Path,
) -> None:
    guide = blocks()
    with accounts("kmd-walk", "kmd-epg") as (account, hook_user):
        add_user(hook_user)
        walk = Walk(box, account, hook_user)
        try:
            for argv in commands(guide["install"][1]):
                walk.run(argv)
            steps = commands(guide["onebox"][1])
            doctor_at = next(i for i, a in enumerate(steps) if a[:2] == ["kamado", "doctor"])
            for argv in steps[:doctor_at]:
                walk.run(argv)
            # "add this to /etc/kamado/kamado.toml"
            with walk.config.open("a") as fh:
                fh.write("\n" + guide["onebox-config"][1])
            for argv in steps[doctor_at:]:
                walk.run(argv)
            paste = walk.setup_output["recorder"]["paste"][0]["text"]
            finish = paste.splitlines()[0].split("'")[1].split(" ")  # EPGStation splits on spaces
            assert finish[0] == str(KAMADO_SCRIPT)
            finish = [str(walk.config) if a == "/etc/kamado/kamado.toml" else a for a in finish]
            recorded = box / "recorded"
            recorded.mkdir()
            clip = make_sample(recorded / "テスト 番組.ts", seconds=1)
            hook = subprocess.run(
                finish, capture_output=True, text=True, timeout=60,
                env={"PATH": "/usr/bin:/bin", "RECPATH": str(clip), "NAME": "テスト 番組"},
            )  # fmt: skip
            assert hook.returncode == 0, hook.stderr
            output = clip.with_suffix(".mp4")
            deadline = time.monotonic() + 300
            while not output.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            logs = {p.name: p.read_text()[-2000:] for p in box.glob("*.log")}
            assert output.exists(), logs
            hooks_log = box / "var/lib/kamado/logs/hooks.log"
            assert clip.name in hooks_log.read_text()
            status = kamado("status", "--json", "--config", str(walk.config), env=walk.env)
            assert status.returncode == 0, status.stderr
            assert '"done"' in status.stdout, status.stdout
        finally:
            walk.stop()
