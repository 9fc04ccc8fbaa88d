"""`kamado setup recorder` with real accounts: the shared spool, the secret, the Redis it runs."""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest
import redis

from tests.support.accounts import KAMADO_SCRIPT, accounts, add_user, is_root, kamado
from tests.support.redis_proc import REDIS_SERVER, free_port
from worker.setup.envfile import parse_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)"),
]


def tree(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every entry under root with its owner, group, mode and content (links: target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(path).encode()
        elif path.is_file():
            content = path.read_bytes()
        else:
            content = b""
        found[str(path.relative_to(root))] = (st.st_uid, st.st_gid, st.st_mode, content)
    return found


def setup(root: Path, account: str, hook_user: str, *extra: str) -> dict:  # type: ignore[type-arg]
    result = kamado(
        "setup", "recorder", "--root", str(root), "--account", account,
        "--recorder-user", hook_user, "--json", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_setup_recorder_shares_the_spool_with_the_hook_user_and_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    with accounts("kmd-svc", "kmd-rec") as (account, hook_user):
        add_user(hook_user)
        first = setup(tmp_path, account, hook_user)
        assert first["changed"]
        from worker.setup.system import gid_of, members, uid_of

        assert hook_user in members(account)
        for sub in ("var/lib/kamado", "var/lib/kamado/spool", "var/lib/kamado/logs"):
            st = (tmp_path / sub).stat()
            assert (st.st_uid, st.st_gid) == (uid_of(account), gid_of(account))
            assert stat.S_IMODE(st.st_mode) == 0o2770, sub
        for name in ("kamado.toml", "kamado.env"):
            st = (tmp_path / "etc/kamado" / name).stat()
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid_of(account), 0o640)
        env = parse_env((tmp_path / "etc/kamado/kamado.env").read_text())
        assert re.fullmatch(r"admin:[0-9a-f]{32}", env["KAMADO_FLOWER_BASIC_AUTH"])
        assert {"text": env["KAMADO_FLOWER_BASIC_AUTH"] + "\n"}.items() <= next(
            p for p in first["paste"] if p["title"].startswith("Flower")
        ).items()
        before = tree(tmp_path)
        second = setup(tmp_path, account, hook_user)
        assert not second["changed"], [a for a in second["actions"] if a["changed"]]
        assert tree(tmp_path) == before


def test_a_dry_run_prints_every_action_and_changes_nothing_fresh_or_half_done(
    tmp_path: Path,
) -> None:
    with accounts("kmd-svc", "kmd-rec") as (account, hook_user):
        add_user(hook_user)
        dry = setup(tmp_path, account, hook_user, "--dry-run")
        assert dry["dry_run"] and dry["changed"]
        shown = "".join(p["text"] for p in dry["paste"])
        assert "redis://kamado:<a new password>@" in shown and "admin:" not in shown
        assert tree(tmp_path) == {}
        assert any("useradd" in " ".join(a["argv"]) for a in dry["actions"])
        from worker.setup.system import group_exists, user_exists

        assert not user_exists(account) and not group_exists(account)
        setup(tmp_path, account, hook_user)
        (tmp_path / "var/lib/kamado/spool").chmod(0o700)  # half undone by hand
        before = tree(tmp_path)
        again = setup(tmp_path, account, hook_user, "--dry-run")
        assert [a["what"] for a in again["actions"] if a["changed"]] == ["/var/lib/kamado/spool"]
        assert tree(tmp_path) == before


def test_the_written_redis_config_runs_and_the_broker_url_in_kamado_toml_authenticates(
    tmp_path: Path,
) -> None:
    with accounts("kmd-svc") as (account,):
        setup(tmp_path, account, "")
        config = tomllib.loads((tmp_path / "etc/kamado/kamado.toml").read_text())
        url = config["broker_url"]
        assert url.startswith("redis://kamado:") and "CHANGE-ME" not in url
        conf = tmp_path / "etc/redis/kamado.conf"
        settings = [x for x in conf.read_text().splitlines() if not x.startswith("#")]
        assert not [x for x in settings if "CHANGE-ME" in x]
        port = free_port()
        data = tmp_path / "redis-data"
        data.mkdir()
        import subprocess

        proc = subprocess.Popen(
            [REDIS_SERVER, str(conf), "--port", str(port), "--dir", str(data),
             "--daemonize", "no", "--logfile", str(data / "log")],
        )  # fmt: skip
        try:
            client = redis.Redis.from_url(url.replace(":6379/", f":{port}/"), socket_timeout=5)
            from tests.support.procs import wait_for

            def answers() -> bool:
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    return False

            assert wait_for(answers, 10, 0.1), (data / "log").read_text()
            anonymous = redis.Redis(port=port, socket_timeout=5)
            with pytest.raises(redis.AuthenticationError):
                anonymous.set("kamado:probe", "1")
            client.close()
            anonymous.close()
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_rerun_keeps_the_broker_password_and_the_admins_own_config_lines(
    tmp_path: Path,
) -> None:
    with accounts("kmd-svc") as (account,):
        setup(tmp_path, account, "")
        config = tmp_path / "etc/kamado/kamado.toml"
        url = tomllib.loads(config.read_text())["broker_url"]
        config.write_text(config.read_text() + '\n[encode]\noutput_dir = "/srv/encoded"\n')
        setup(tmp_path, account, "")
        data = tomllib.loads(config.read_text())
        assert data["broker_url"] == url
        assert data["encode"]["output_dir"] == "/srv/encoded"


def test_setup_recorder_refuses_an_unknown_recorder_with_exit_2(tmp_path: Path) -> None:
    result = kamado(
        "setup", "recorder", "--root", str(tmp_path), "--recorder", "mirakurun",
        "--account", "kmd-never-made",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--recorder mirakurun" in result.stderr
    assert tree(tmp_path) == {}


def test_setup_run_by_a_plain_user_says_to_use_sudo_and_changes_nothing(tmp_path: Path) -> None:
    from tests.support.users import Accounts

    users = Accounts()
    try:
        users.add("plain", member=False)
        root = users.base / "root"
        root.mkdir()
        argv = [str(KAMADO_SCRIPT), "setup", "recorder", "--root", str(root)]
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
        refused = users.run("plain", argv, env=env)
        assert refused.returncode == 2, refused.stderr
        assert "run it with sudo" in refused.stderr
        assert list(root.iterdir()) == []
        shown = users.run("plain", [*argv, "--dry-run"], env=env)
        assert shown.returncode == 0, shown.stderr
        assert "would" in shown.stdout and list(root.iterdir()) == []
    finally:
        users.close()


def test_a_rerun_gives_the_group_what_an_older_kamado_left_private_in_the_spool(
    tmp_path: Path,
) -> None:
    with accounts("kmd-svc") as (account,):
        setup(tmp_path, account, "")
        spool = tmp_path / "var/lib/kamado/spool"
        (spool / "bad").mkdir(mode=0o700)
        old = [spool / "20260101-録画.json", spool / ".drain.lock", spool / "bad" / "x.json"]
        for path in old:
            path.write_text("{}")
            path.chmod(0o600)
        log = tmp_path / "var/lib/kamado/logs/hooks.log"
        log.write_text("old\n")
        log.chmod(0o600)
        again = setup(tmp_path, account, "")
        from worker.setup.system import gid_of

        for path in [*old, log]:
            st = path.stat()
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid_of(account), 0o660)
        assert stat.S_IMODE((spool / "bad").stat().st_mode) == 0o2770
        assert len([a for a in again["actions"] if a["changed"]]) == len(old) + 2
        assert not setup(tmp_path, account, "")["changed"]


def test_the_redis_include_ends_redis_conf_once_and_keeps_its_owner_and_mode(
    tmp_path: Path,
) -> None:
    main = tmp_path / "etc/redis/redis.conf"
    main.parent.mkdir(parents=True)
    main.write_text("bind 127.0.0.1\ninclude /etc/redis/kamado.conf\nport 6379\n")
    main.chmod(0o640)
    with accounts("kmd-svc") as (account,):
        setup(tmp_path, account, "")
        lines = main.read_text().splitlines()
        assert lines == ["bind 127.0.0.1", "port 6379", "include /etc/redis/kamado.conf"]
        assert stat.S_IMODE(main.stat().st_mode) == 0o640
        assert not setup(tmp_path, account, "")["changed"]


@pytest.mark.parametrize("host", ["kamado:pw@host", "host/0", "-x", "host name", "ホスト", ""])
def test_a_broker_host_that_is_no_host_name_is_refused_with_exit_2(
    tmp_path: Path, host: str
) -> None:
    result = kamado(
        "setup", "recorder", "--root", str(tmp_path), "--broker-host", host,
        "--account", "kmd-never-made",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert "--broker-host" in result.stderr
    assert tree(tmp_path) == {}
