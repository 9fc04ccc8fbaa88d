"""docs/deploy.md re-walked: its marked commands run against real accounts, Redis and a worker.

What this machine cannot do is skipped by an explicit rule with its reason (no systemd
as PID 1, no network for apt or git, no VT-d or Intel GPU), so a new kind of command in
the guide fails here until the walk knows it. Files go under a temporary root, accounts
get unique names and are removed; the machine's /etc is never touched.
"""

from __future__ import annotations

import contextlib
import json
import pwd
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.accounts import KAMADO_SCRIPT, accounts, is_root, kamado
from tests.support.guide import (
    KNOWN,
    ROOT,
    blocks,
    commands,
    option_value,
    replace_option,
    steps,
)
from tests.support.procs import wait_for
from tests.support.redis_proc import REDIS_SERVER, free_port
from tests.support.sshd import SSHD, SshdProcess, needs_sshd
from tests.support.users import Account, Accounts
from tests.support.workers import environ_without_kamado
from worker.encode.sample import make_sample
from worker.setup.envfile import parse_env
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
        "install", "install-host", "recorder", "recorder-check", "host", "guest",
        "worker", "worker-config", "onebox", "onebox-config", "onebox-services",
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
    """Runs the guide's commands for one box under ``root``, as the users the guide names.

    ``sudo`` commands run as root; the hook runs as the recorder's user and the units'
    ExecStart lines as the account `setup recorder` made, through tests/support/users.py
    (a mount namespace in which a Python under root's home is reachable, as a venv made
    from the system Python is on a real box).
    """

    def __init__(self, root: Path, users: Accounts, account: str, hook_user: str) -> None:
        self.root = root
        self.users = users
        self.account = account
        self.hook_user = hook_user
        self.redis_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.setup_output: dict[str, dict] = {}  # type: ignore[type-arg]
        self.env = environ_without_kamado() | {"HOME": str(root), "COLUMNS": "200"}
        self.sftp: dict[str, str] = {}  # setup location's --host/--remote-dir here
        self.sftp_port = 22

    def etc(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def config(self) -> Path:
        return self.etc("/etc/kamado/kamado.toml")

    def walk(self, body: str) -> None:
        """Every command of a block, in order, as the user the guide names."""
        for user, argv in steps(body):
            self.run(argv, user)

    def run(self, argv: list[str], user: str = "root") -> None:
        program = argv[0]
        if program in SKIPPED:
            return
        if program == "systemctl":
            self.systemctl(argv[1:])
        elif program == "install":
            self.install(argv[1:])
        else:
            assert program == "kamado", argv
            assert user in ("root", "kamado"), user
            self.kamado(argv[1:], None if user == "root" else "service")

    def install(self, args: list[str]) -> None:
        args = [self.account if a == "kamado" else a for a in args]
        args = [str(self.etc(a)) if a.startswith("/") else a for a in args]
        subprocess.run(["install", *args], check=True, timeout=30)

    def localise_args(self, args: list[str]) -> list[str]:
        """A documented kamado command as it must run here: this root, these accounts."""
        for option in ("--recorder-user", "--hook-user"):
            if option_value(args, option) == "epgstation":
                args = replace_option(args, option, self.hook_user)
        if args[0] == "setup":
            args = [*args, "--root", str(self.root)]
            args += ["--account", self.account]
            if args[1] == "location":
                if "--user" not in args:
                    args += ["--user", self.account]  # the recorder's account, "kamado" there
                for option, value in self.sftp.items():
                    args = replace_option(args, option, value)
                args += ["--port", str(self.sftp_port)]
            if args[1] == "units" and self.config.is_file():  # else: none yet, the defaults
                args += ["--config", str(self.config)]
            args.append("--json")
        elif args[0] == "doctor":
            args += ["--config", str(self.config), "--service-user", self.account, "--json"]
            args += ["--root", str(self.root)]
            env_file = self.etc("/etc/kamado/kamado.env")  # doctor's default, when present
            args += ["--env-file", str(env_file) if env_file.is_file() else "/dev/null"]
        elif args[:2] == ["config", "check"]:
            args = [str(self.etc(a)) if a.startswith("/etc/") else a for a in args]
            args.append(str(self.config))
        elif args[:2] == ["locations", "check"]:
            args += ["--config", str(self.config)]
        return args

    def kamado(self, args: list[str], role: str | None = None) -> None:
        args = self.localise_args(args)
        # sudo -u kamado gives the services' home, where their defaults (scratch) live
        env = dict(self.env, HOME=str(self.etc("/var/lib/kamado"))) if role else self.env
        result = self.users.run(role, [str(KAMADO_SCRIPT), *args], env=env)
        if args[0] == "doctor" and result.returncode == 1:
            findings = json.loads(result.stdout)["findings"]
            raise AssertionError([f for f in findings if f["severity"] == "fail"])
        assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
        if args[0] == "setup":
            self.setup_output[args[1]] = json.loads(result.stdout)
            entry = pwd.getpwnam(self.account)
            self.users.accounts["service"] = Account(self.account, entry.pw_uid, entry.pw_gid)
            if args[1] == "recorder":
                self.localise_config()

    def add_config(self, text: str, *, first: bool = False) -> None:
        """What the guide says to add to kamado.toml, with this root's paths."""
        self.config.parent.mkdir(parents=True, exist_ok=True)
        old = self.config.read_text() if self.config.is_file() else ""
        self.config.write_text(text + "\n" + old if first else old + "\n" + text)
        self.localise_config()

    def localise_config(self) -> None:
        """The config as it must read here: paths under this root, Redis on its port."""
        text = self.config.read_text()
        for prefix in ("/var/lib/kamado", "/etc/kamado/"):
            text = text.replace(f'"{prefix}', f'"{self.root}{prefix}')
        url = tomllib.loads(text).get("broker_url")
        if url:
            host_port = url.split("@", 1)[1].split("/", 1)[0]
            text = text.replace(host_port, f"127.0.0.1:{self.redis_port}")
        self.config.write_text(text)

    def systemctl(self, args: list[str]) -> None:
        """No systemd here: start what the units would start, from their own lines."""
        for name in (a for a in args[1:] if not a.startswith("-")):
            if name == "redis-server":
                self.start_redis()
            elif name in ("kamado-scheduler", "kamado-worker"):
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
        url = tomllib.loads(self.config.read_text())["broker_url"]
        client = redis.Redis.from_url(url, socket_timeout=2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            assert wait_for(answers, 10, 0.1), (data / "redis.log").read_text()
        finally:
            client.close()

    def start_unit(self, name: str) -> None:
        """The unit's ExecStart as its User=, with its Environment= and EnvironmentFile=."""
        unit = self.etc(f"/etc/systemd/system/{name}.service").read_text()
        # systemd sets HOME to the user's home: the state directory
        env = dict(self.env, HOME=str(self.etc("/var/lib/kamado")))
        argv: list[str] = []
        for line in unit.splitlines():
            key, _, value = line.partition("=")
            if key == "ExecStart":
                argv = value.split()
            elif key == "User":
                assert value == "kamado", line
            elif key == "Environment":
                var, _, val = value.partition("=")
                env[var] = str(self.etc(val)) if val.startswith(("/etc/", "/var/")) else val
            elif key == "EnvironmentFile":
                path = self.etc(value.lstrip("-"))
                env.update(parse_env(path.read_text()) if path.is_file() else {})
        assert argv and argv[0] == str(KAMADO_SCRIPT), argv
        with (self.root / f"{name}.log").open("ab") as log:
            self.procs.append(
                subprocess.Popen(self.users.argv("service", argv), env=env, stdout=log, stderr=log)
            )

    def hook(self, line: str, recording: Path) -> subprocess.CompletedProcess[str]:
        """The hook line as EPGStation runs it: split on spaces, as its user, its variables."""
        argv = [str(self.config) if a == "/etc/kamado/kamado.toml" else a for a in line.split(" ")]
        assert argv[0] == str(KAMADO_SCRIPT), argv
        env = {"PATH": "/usr/bin:/bin", "RECPATH": str(recording), "NAME": recording.stem}
        return self.users.run("hook", argv, env=env)

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
    users = Accounts()
    with accounts("kmd-walk") as (account,), contextlib.ExitStack() as cleanup:
        cleanup.callback(users.close)
        hook_user = users.add("hook", member=False).name
        walk = Walk(box, users, account, hook_user)
        cleanup.callback(walk.stop)
        walk.walk(guide["install"][1])
        walk.walk(guide["onebox"][1])
        walk.add_config(guide["onebox-config"][1])
        walk.walk(guide["onebox-services"][1])
        paste = walk.setup_output["recorder"]["paste"][0]
        assert paste["where"] == "EPGStation's config/config.yml"
        finish = paste["text"].splitlines()[0]
        assert finish.startswith("recordingFinishCommand: '")
        recorded = box / "recorded"
        recorded.mkdir()
        clip = make_sample(recorded / "テスト 番組.ts", seconds=1)
        hook = walk.hook(finish.split("'")[1], clip)
        assert hook.returncode == 0, hook.stderr
        output = box / "var/lib/kamado/encoded" / f"{clip.stem}.mp4"
        assert wait_for(output.exists, 300, 0.5), {
            p.name: p.read_text()[-3000:] for p in box.glob("*.log")
        }
        from worker.setup.system import uid_of

        assert output.stat().st_uid == uid_of(account)  # the service's user wrote it
        assert clip.name in (box / "var/lib/kamado/logs/hooks.log").read_text()
        status = users.run(
            None, [str(KAMADO_SCRIPT), "status", "--json", "--config", str(walk.config)],
            env=walk.env,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert '"done"' in status.stdout, status.stdout


def paste(output: dict, where: str) -> str:  # type: ignore[type-arg]
    """The text of the block a setup command printed for ``where`` (exactly, else a prefix)."""
    found = [p["text"] for p in output["paste"] if p["where"] == where] or [
        p["text"] for p in output["paste"] if p["where"].startswith(where)
    ]
    assert len(found) == 1, (where, [p["where"] for p in output["paste"]])
    return str(found[0])


def run_on_recorder(text: str, recorder: Walk) -> None:
    """The shell lines setup printed "run on" the recorder, as root, /etc/ssh under its root."""
    script = text.replace("sudo ", "").replace("/etc/ssh/", f"{recorder.etc('/etc/ssh')}/")
    subprocess.run(["bash", "-euc", script], check=True, timeout=60)


@pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)")
@needs_sshd
@pytest.mark.timeout(600)
def test_the_three_box_guide_walked_fetches_over_sftp_and_delivers_the_mp4_back(
    tmp_path: Path,
) -> None:
    """Recorder and software worker as two roots on this machine, the SFTP account on sshd."""
    guide = blocks()
    users = Accounts()
    with accounts("kmd-walk") as (account,), contextlib.ExitStack() as cleanup:
        cleanup.callback(users.close)
        boxes = []
        for name in ("recorder", "worker"):
            path = Path(tempfile.mkdtemp(prefix=f"kamado-walk-{name}-", dir="/run"))
            path.chmod(0o755)
            cleanup.callback(shutil.rmtree, path, True)
            boxes.append(path)
        hook = users.add("hook", member=False)
        recorder = Walk(boxes[0], users, account, hook.name)
        worker = Walk(boxes[1], users, account, hook.name)
        worker.redis_port = recorder.redis_port
        cleanup.callback(worker.stop)
        cleanup.callback(recorder.stop)
        # The recorder: its recordings directory belongs to the recording software's user.
        recordings = recorder.etc("/srv/recorded")
        recordings.mkdir(parents=True)
        shutil.chown(recordings, hook.name, hook.name)
        recordings.chmod(0o755)
        recorder.walk(guide["install"][1])
        recorder.walk(guide["recorder"][1])
        recorder.walk(guide["recorder-check"][1])
        sshd = SshdProcess(recorder.root / "sshd").start()
        cleanup.callback(sshd.stop)
        # The software worker, section 5; its recorder is this sshd at 127.0.0.1.
        worker.sftp = {"--host": "127.0.0.1", "--remote-dir": str(recordings)}
        worker.sftp_port = sshd.port
        worker.walk(guide["worker"][1])
        printed = worker.setup_output["location"]
        # What setup printed for the recorder, done there as printed.
        for block in (p for p in printed["paste"] if p["where"] == "run on 127.0.0.1"):
            run_on_recorder(block["text"], recorder)
        match = paste(printed, "the end of /etc/ssh/sshd_config")
        match = match.replace("/etc/ssh/", f"{recorder.etc('/etc/ssh')}/")
        config = sshd.config.read_text().replace("StrictModes no", "StrictModes yes")
        sshd.config.write_text(config + match)
        # Debian's sshd lets a nologin account in through PAM; this sshd runs without PAM.
        subprocess.run(["usermod", "-p", "*", account], check=True, timeout=30)
        sshd.stop()
        with sshd.log.open("ab") as log:
            sshd.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(sshd.config)], stderr=log)
        sshd.wait_ready()
        recorder.add_config(paste(printed, "/etc/kamado/kamado.toml on the recorder"))
        broker_line = paste(recorder.setup_output["recorder"], "the top of /etc/kamado/kamado.toml")
        worker.add_config(broker_line + paste(printed, "/etc/kamado/kamado.toml on this worker"))
        worker.add_config(guide["worker-config"][1])
        state = worker.etc("/var/lib/kamado")  # setup made it, as StateDirectory= would
        assert state.stat().st_uid == pwd.getpwnam(account).pw_uid
        worker.walk(guide["worker-services"][1])
        # A recording ends: EPGStation runs the line setup printed.
        clip = make_sample(recordings / "ドラマ 第1話.ts", seconds=1)
        shutil.chown(clip, hook.name, hook.name)
        finish = paste(recorder.setup_output["recorder"], "EPGStation's config/config.yml")
        finish = finish.splitlines()[0]
        done = recorder.hook(finish.split("'")[1], clip)
        assert done.returncode == 0, done.stderr
        output = clip.with_suffix(".mp4")
        logs = lambda: {p.name: p.read_text()[-3000:] for b in boxes for p in b.glob("*.log")}  # noqa: E731
        assert wait_for(output.exists, 300, 0.5), logs()
        assert output.stat().st_uid == pwd.getpwnam(account).pw_uid  # written over SFTP
        assert not list(worker.etc("/var/lib/kamado").rglob("*.mp4"))
