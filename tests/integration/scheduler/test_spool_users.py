"""The spool shared by two real Unix users: the recorder's (or root) writes, the service's delivers.

The layout is the documented one (what `kamado setup recorder` creates): the config
0640 root:GROUP in a 0750 root:GROUP directory, the state directory and its ``spool/``
and ``logs/`` SERVICE:GROUP 2770, the recorder's user in GROUP. Each user is a real
account made for the test (tests/support/users.py); hooks run with a private umask.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scheduler.spool.access import CONFIG_DIR_MODE, CONFIG_MODE, DIR_MODE, ENTRY_MODE
from tests.integration.scheduler.conftest import ROOT, write_config
from tests.integration.scheduler.test_hooks import epgstation_env
from tests.support.procs import pids_with, wait_for
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.users import Accounts
from worker.broker.registry import Registry

pytestmark = pytest.mark.integration


@dataclass
class Shared:
    """The accounts, the config and the state directory of one recorder box."""

    accounts: Accounts
    config: Path
    state: Path
    recordings: Path
    redis: RedisProcess

    @property
    def spool(self) -> Path:
        return self.state / "spool"

    def env(self, role: str | None, **extra: str) -> dict[str, str]:
        cache = self.accounts.base / f"cache-{role or 'root'}"
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_CACHE_HOME": str(cache),
                **extra}  # fmt: skip

    def kamado(self, role: str | None, *args: str, env: dict[str, str] | None = None,
               umask: int = 0o022) -> tuple[int, str, str]:  # fmt: skip
        argv = [sys.executable, "-m", "worker.cli.main", *args, "--config", str(self.config)]
        done = self.accounts.run(role, argv, env=env or self.env(role), umask=umask, cwd=ROOT)
        return done.returncode, done.stdout, done.stderr

    def hook(self, role: str | None, name: str, *, umask: int = 0o077) -> tuple[int, str, str]:
        rec = self.recordings / name
        env = {**epgstation_env(str(rec)), **self.env(role)}
        argv = [sys.executable, "-m", "worker.cli.main", "hook", "epgstation",
                "--config", str(self.config)]  # fmt: skip
        done = self.accounts.run(role, argv, env=env, umask=umask, cwd=ROOT)
        return done.returncode, done.stdout, done.stderr

    def deliveries(self) -> list[int]:
        """Pids of the detached `spool flush` processes hooks started (any user)."""
        return pids_with(f"spool\0flush\0--config\0{self.config}\0", program=b"")

    def settled(self) -> None:
        """Wait until the deliveries hooks started have ended."""
        assert wait_for(lambda: not self.deliveries(), 60), self.deliveries()

    def entries(self) -> list[Path]:
        return sorted(self.spool.glob("*.json"))


def owned(path: Path, uid: int, gid: int, mode: int) -> None:
    st = path.stat()
    assert (st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode))) == (uid, gid, oct(mode)), path


@pytest.fixture
def shared(own_redis: RedisProcess, tiny_ts: Path) -> Iterator[Shared]:
    """A recorder box: a service user, the recorder's user (in the group), an outsider."""
    accounts = Accounts()
    try:
        svc = accounts.add("svc", member=True, primary=True)
        accounts.add("rec", member=True)
        accounts.add("out", member=False)
        for role in ("svc", "rec", "out", "root"):
            cache = accounts.base / f"cache-{role}"
            cache.mkdir()
            if role != "root":
                os.chown(cache, accounts.accounts[role].uid, -1)
        etc = accounts.base / "etc"
        etc.mkdir()
        os.chown(etc, 0, accounts.gid)
        etc.chmod(CONFIG_DIR_MODE)
        state = accounts.base / "state"
        for directory in (state, state / "spool", state / "logs"):
            directory.mkdir()
            os.chown(directory, svc.uid, accounts.gid)
            directory.chmod(DIR_MODE)
        # delivery_retry 0: a hook's delivery gives up at once while the broker is away
        extra = f"delivery_retry = 0\n[metrics]\nport = {free_port()}\n"
        config = write_config(etc / "kamado.toml", own_redis.url, state, extra)
        os.chown(config, 0, accounts.gid)
        config.chmod(CONFIG_MODE)
        recordings = accounts.base / "recorded"
        recordings.mkdir()
        for name in ("a.ts", "b.ts", "c.ts", "d.ts"):
            shutil.copyfile(tiny_ts, recordings / name)
            (recordings / name).chmod(0o644)
        yield Shared(accounts, config, state, recordings, own_redis)
    finally:
        accounts.close()


def test_a_hook_run_as_the_recorders_user_is_delivered_by_the_service_user(
    shared: Shared,
) -> None:
    svc = shared.accounts.accounts["svc"]
    shared.redis.kill()
    code, out, err = shared.hook("rec", "a.ts")
    assert code == 0, err
    assert out.startswith("spooled")
    shared.settled()
    (entry,) = shared.entries()
    rec = shared.accounts.accounts["rec"]
    owned(entry, rec.uid, shared.accounts.gid, ENTRY_MODE)  # umask 077 notwithstanding
    for name in ("hooks.log", "spool-flush.log"):
        assert stat.S_IMODE((shared.state / "logs" / name).stat().st_mode) == ENTRY_MODE
    owned(shared.state / "logs", svc.uid, shared.accounts.gid, DIR_MODE)
    shared.redis.start()
    code, out, err = shared.kamado("svc", "spool", "flush", "--json")
    assert code == 0, err
    flushed = json.loads(out)
    assert (len(flushed["delivered"]), flushed["quarantined"], flushed["unreadable"]) == (1, 0, [])
    (job,) = Registry.connect(shared.redis.url).list()
    assert job.job.source == str(shared.recordings / "a.ts")
    assert not (shared.spool / "bad").exists()


def test_a_hook_run_as_root_leaves_entries_and_logs_owned_by_the_service_user(
    shared: Shared,
) -> None:
    svc = shared.accounts.accounts["svc"]
    (shared.state / "logs").rmdir()  # the root hook creates it
    shared.redis.kill()
    code, _, err = shared.hook(None, "b.ts")
    assert code == 0, err
    shared.settled()
    (entry,) = shared.entries()
    owned(entry, svc.uid, shared.accounts.gid, ENTRY_MODE)
    owned(shared.state / "logs", svc.uid, shared.accounts.gid, DIR_MODE)
    owned(shared.state / "logs" / "hooks.log", svc.uid, shared.accounts.gid, ENTRY_MODE)
    for lock in shared.spool.glob(".*.lock"):
        owned(lock, svc.uid, shared.accounts.gid, ENTRY_MODE)
    shared.redis.start()
    code, out, err = shared.kamado("svc", "spool", "flush", "--json")
    assert code == 0, err
    assert len(json.loads(out)["delivered"]) == 1
    assert shared.entries() == []


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        body = reply.read().decode()
    return {
        line.split()[0]: float(line.split()[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }


def test_an_entry_the_service_cannot_read_stays_in_the_spool_and_is_reported_loudly(
    shared: Shared,
) -> None:
    shared.redis.kill()
    code, _, err = shared.hook("rec", "c.ts")
    assert code == 0, err
    shared.settled()
    (entry,) = shared.entries()
    os.chown(entry, 0, 0)  # what a root hook of an older kamado left: root's, 0600
    entry.chmod(0o600)
    shared.redis.start()
    code, out, err = shared.kamado("svc", "spool", "flush", "--json")
    assert code == 0, err
    flushed = json.loads(out)
    assert (flushed["delivered"], flushed["quarantined"]) == ([], 0)
    (unreadable,) = flushed["unreadable"]
    assert unreadable["file"] == entry.name
    assert "unreadable by user" in unreadable["problem"] and "chmod 0660" in unreadable["problem"]
    assert shared.entries() == [entry] and not (shared.spool / "bad").exists()
    code, out, err = shared.kamado("svc", "spool", "list", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["file"], row["kind"]) == (entry.name, "unreadable")
    assert "owner root, group root, mode 0600" in row["problem"]
    log = (shared.state / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"spool: {entry.name}: unreadable by user" in log
    svc = shared.accounts.accounts["svc"]
    for name in (".drain.lock", ".service.lock"):  # as an older kamado's service left them
        lock = shared.spool / name
        lock.touch()
        os.chown(lock, svc.uid, svc.gid)
        lock.chmod(0o600)
    port = int(shared.config.read_text().split("port = ")[1].split()[0])
    argv = [sys.executable, "-m", "worker.cli.main", "scheduler", "run",
            "--config", str(shared.config)]  # fmt: skip
    service = shared.accounts.popen("svc", argv, env=shared.env("svc"), cwd=ROOT)
    try:

        def metric() -> float | None:
            try:
                return scrape(port).get("kamado_spool_unreadable")
            except OSError:
                return None

        assert wait_for(lambda: metric() == 1.0, 30)
        for name in (".drain.lock", ".service.lock"):  # the service shared them at start
            owned(shared.spool / name, svc.uid, svc.gid, ENTRY_MODE)
        time.sleep(1)  # several spool passes: the entry is still not set aside
        assert shared.entries() == [entry] and not (shared.spool / "bad").exists()
        os.chown(entry, 0, shared.accounts.gid)  # the fix the message names
        entry.chmod(0o660)
        registry = Registry.connect(shared.redis.url)
        assert wait_for(lambda: len(registry.list()) == 1, 30)
        assert wait_for(lambda: metric() == 0.0, 30)
    finally:
        service.terminate()
        _, err = service.communicate(timeout=30)
    warnings = [line for line in err.splitlines() if "unreadable by user" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], err


def test_a_hook_whose_user_may_not_use_the_config_or_spool_fails_with_one_line_and_the_fix(
    shared: Shared,
) -> None:
    code, out, err = shared.hook("out", "d.ts")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(shared.config) in err and "permission denied" in err
    assert f"usermod -aG {shared.accounts.group}" in err
    # Readable config, but a spool the user may not write.
    shared.config.parent.chmod(0o755)
    shared.config.chmod(0o644)
    code, out, err = shared.hook("out", "d.ts")
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(shared.spool) in err and "permission denied for user" in err
    assert "mode 2770" in err
    assert shared.entries() == []
    for command in (("spool", "list"), ("spool", "flush")):
        code, out, err = shared.kamado("out", *command)
        assert (code, out) == (2, ""), err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"{shared.spool}: permission denied for user" in err


def test_a_recording_the_service_user_cannot_read_is_left_in_the_spool_not_set_aside(
    shared: Shared,
) -> None:
    rec = shared.accounts.accounts["rec"]
    private = shared.recordings / "d.ts"
    os.chown(private, rec.uid, rec.gid)
    private.chmod(0o600)  # the recorder's own file: its hook reads it, the service cannot
    shared.redis.kill()
    code, _, err = shared.hook("rec", "d.ts")
    assert code == 0, err
    shared.settled()
    shared.redis.start()
    code, out, err = shared.kamado("svc", "spool", "flush", "--json")
    assert code == 0, err
    flushed = json.loads(out)
    assert (flushed["delivered"], flushed["quarantined"]) == ([], 0)
    (unreadable,) = flushed["unreadable"]
    assert f"recording {private}: not readable (permission denied)" in unreadable["problem"]
    assert "must read the recordings" in unreadable["problem"]
    assert len(shared.entries()) == 1 and not (shared.spool / "bad").exists()
    private.chmod(0o644)
    code, out, err = shared.kamado("svc", "spool", "flush", "--json")
    assert code == 0, err
    assert len(json.loads(out)["delivered"]) == 1 and shared.entries() == []
