"""`kamado setup recorder`: the kamado account, shared spool, broker secret and hook lines.

The recorder's own user (EPGStation's, Chinachu's, EDCB's) runs the hook; the service
runs as ``kamado``. Both are in the ``kamado`` group, and the spool and log directories
are group-writable with setgid, so an entry either writes is one the other can read.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from scheduler.spool.access import CONFIG_MODE, DIR_MODE, ENTRY_MODE
from worker.setup.account import CONFIG, ETC, KAMADO, ensure_account
from worker.setup.envfile import parse_env, toml_string, with_value
from worker.setup.report import Paste
from worker.setup.system import System, owner_names, user_exists

ENV_FILE = f"{ETC}/kamado.env"
REDIS_CONF = "/etc/redis/kamado.conf"
REDIS_MAIN = "/etc/redis/redis.conf"
SYMLINK = "/usr/local/bin/kamado"
CHINACHU_SCRIPT = "/usr/local/bin/kamado-chinachu-hook"
CONFIG_PASSWORD = re.compile(r'^\s*broker_url\s*=\s*"redis://kamado:([^@"]+)@', re.MULTILINE)
FLOWER_AUTH = "KAMADO_FLOWER_BASIC_AUTH"
URL_PASSWORD = re.compile(r"^redis://kamado:([^@]+)@")
ACL_PASSWORD = re.compile(r"^user kamado on >(\S+)", re.MULTILINE)
ADMIN_PASSWORD = re.compile(r"^user admin on >(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class RecorderOptions:
    """What `setup recorder` was asked for."""

    recorder: str  # epgstation | chinachu | edcb | none
    recorder_user: str
    broker_host: str
    broker_port: int
    listen: str  # the address Redis binds besides loopback ("" for loopback only)
    state_dir: str
    binary: str
    redis_template: Path
    account: str = KAMADO  # the services' user and the group shared with the hook


def setup_recorder(system: System, opts: RecorderOptions) -> list[Paste]:
    """Make the accounts, directories and secrets; return the lines to paste elsewhere."""
    ensure_account(system, opts.state_dir, opts.account)
    if opts.recorder_user:
        system.ensure_member(opts.recorder_user, opts.account)
    # The state directory, spool/ and logs/ are shared with the hook's user (setgid 2770).
    for directory in (opts.state_dir, f"{opts.state_dir}/spool", f"{opts.state_dir}/logs"):
        system.ensure_dir(directory, owner=opts.account, group=opts.account, mode=DIR_MODE)
    _share_existing(system, opts)
    password, admin, new = _passwords(system)
    url = f"redis://kamado:{password}@{opts.broker_host}:{opts.broker_port}/0"
    # Hooks read only kamado.toml, so the broker URL lives there (0640 root:kamado).
    config_path = system.path(CONFIG)
    current = config_path.read_text(encoding="utf-8") if config_path.is_file() else None
    system.ensure_file(
        CONFIG,
        with_broker_url(current, url, opts),
        owner="root",
        group=opts.account,
        mode=CONFIG_MODE,
        replace=True,
    )
    # Flower's login goes where its unit reads secrets; an existing one is kept.
    env_path = system.path(ENV_FILE)
    env_text = env_path.read_text(encoding="utf-8") if env_path.is_file() else ""
    flower = parse_env(env_text).get(FLOWER_AUTH, "")
    if not flower or "change-me" in flower.lower():
        flower = f"admin:{secrets.token_hex(16)}"
        env_text = with_value(env_text, FLOWER_AUTH, flower)
    system.ensure_file(
        ENV_FILE, env_text, owner="root", group=opts.account, mode=CONFIG_MODE, replace=True
    )
    redis_owner = "redis" if user_exists("redis") else "root"
    system.ensure_file(
        REDIS_CONF,
        redis_conf(opts.redis_template.read_text(encoding="utf-8"), password, admin, opts),
        owner=redis_owner,
        group=redis_owner,
        mode=CONFIG_MODE,
        replace=True,
    )
    _include_redis_conf(system)
    system.ensure_symlink(SYMLINK, opts.binary)
    pastes = hook_lines(opts.recorder, opts.binary)
    if opts.recorder == "chinachu":
        system.ensure_file(
            CHINACHU_SCRIPT,
            chinachu_script(opts.binary),
            owner="root",
            group="root",
            mode=0o755,
            replace=True,
        )
    if system.dry_run and new:
        url = url.replace(password, "<a new password>")
    pastes.append(
        Paste(
            "the broker URL every other box uses (host agent, guest VM, workers)",
            f"the top of {CONFIG} on each of them (0640 root:kamado)",
            f"broker_url = {toml_string(url)}\n",
        )
    )
    if not system.dry_run:
        pastes.append(
            Paste("Flower's login (kept in kamado.env)", "your password manager", f"{flower}\n")
        )
    return pastes


def _share_existing(system: System, opts: RecorderOptions) -> None:
    """What an older kamado left in the shared directories (0600 entries): group, 0660."""
    for sub in ("spool", "spool/bad", "logs"):
        where = f"{opts.state_dir}/{sub}"
        directory = system.path(where)
        if not directory.is_dir():
            continue
        if sub == "spool/bad":
            system.ensure_dir(where, owner=opts.account, group=opts.account, mode=DIR_MODE)
        for entry in sorted(directory.iterdir()):
            if entry.is_file() and not entry.is_symlink():
                owner, _ = owner_names(entry)
                system.ensure_meta(
                    f"{where}/{entry.name}", owner=owner, group=opts.account, mode=ENTRY_MODE
                )


def with_broker_url(current: str | None, url: str, opts: RecorderOptions) -> str:
    """kamado.toml with ``broker_url`` set: a new minimal file, or the line put in place.

    An existing top-level ``broker_url`` line is replaced; otherwise the line goes first,
    since TOML's top-level keys must come before the first table.
    """
    line = f"broker_url = {toml_string(url)}"
    if current is None:
        return (
            "# Written by `kamado setup recorder`; every key: deploy/kamado.example.toml.\n"
            f"{line}\n"
            f"state_dir = {toml_string(opts.state_dir)}\n"
        )
    lines = current.splitlines()
    for i, text in enumerate(lines):
        if text.lstrip().startswith("["):
            break
        if re.match(r"^\s*broker_url\s*=", text):
            lines[i] = line
            return "\n".join(lines) + "\n"
    return f"{line}\n{current}" if current.endswith("\n") or not current else f"{line}\n{current}\n"


def _passwords(system: System) -> tuple[str, str, bool]:
    """The broker and admin passwords already set up, else new ones (a rerun keeps them).

    The flag says the broker password is new.
    """
    password = admin = ""
    config_path = system.path(CONFIG)
    if config_path.is_file():
        found = CONFIG_PASSWORD.search(config_path.read_text(encoding="utf-8"))
        password = found.group(1) if found else ""
    env_path = system.path(ENV_FILE)
    if not password and env_path.is_file():
        found = URL_PASSWORD.match(
            parse_env(env_path.read_text(encoding="utf-8")).get("KAMADO_BROKER_URL", "")
        )
        password = found.group(1) if found else ""
    conf_path = system.path(REDIS_CONF)
    if conf_path.is_file():
        text = conf_path.read_text(encoding="utf-8")
        if not password and (acl := ACL_PASSWORD.search(text)):
            password = acl.group(1)
        if admin_found := ADMIN_PASSWORD.search(text):
            admin = admin_found.group(1)
    if "CHANGE-ME" in password:
        password = ""
    if "CHANGE-ME" in admin:
        admin = ""
    return password or secrets.token_hex(24), admin or secrets.token_hex(24), not password


def redis_conf(template: str, password: str, admin: str, opts: RecorderOptions) -> str:
    """deploy/redis/kamado.conf with the passwords, the bind address and the port filled in."""
    bind = " ".join(["127.0.0.1", "-::1", *([opts.listen] if opts.listen else [])])
    text = template.replace("CHANGE-ME-long-random", password)
    text = text.replace("CHANGE-ME-admin-password", admin)
    text = re.sub(r"^bind .*$", f"bind {bind}", text, count=1, flags=re.MULTILINE)
    return re.sub(r"^port .*$", f"port {opts.broker_port}", text, count=1, flags=re.MULTILINE)


def _include_redis_conf(system: System) -> None:
    main = system.path(REDIS_MAIN)
    line = f"include {REDIS_CONF}"
    if not main.is_file():
        system.note(REDIS_MAIN, "not found (apt install redis-server, then run this again)")
        return
    text = main.read_text(encoding="utf-8")
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if lines and lines[-1] == line:
        system.note(REDIS_MAIN, f"ends with {line}")
        return
    kept = [x for x in text.splitlines() if x.strip() != line]
    owner, group = owner_names(main)
    system.ensure_file(
        REDIS_MAIN,
        "\n".join(kept).rstrip("\n") + f"\n{line}\n",
        owner=owner,
        group=group,
        mode=main.stat().st_mode & 0o7777,
        replace=True,
    )


def hook_lines(recorder: str, binary: str) -> list[Paste]:
    """The recorder's hook configuration, calling this kamado by its absolute path."""
    config = f"--config {CONFIG}"
    if recorder == "epgstation":
        return [
            Paste(
                "EPGStation v2: the hook commands (restart EPGStation afterwards); the start "
                "command encodes while recording on a worker fast enough for it, else the "
                "job runs after the finish command",
                "EPGStation's config/config.yml",
                f"recordingFinishCommand: '{binary} hook epgstation {config}'\n"
                f"recordingFailedCommand: '{binary} hook epgstation --failed {config}'\n"
                f"recordingStartCommand: '{binary} hook epgstation --start {config}'\n",
            ),
            Paste(
                "EPGStation v2: or kamado behind its encode button and auto-encode (presets; "
                "a preset's cmd is split on spaces: no quoting)",
                "EPGStation's config/config.yml, under encode:",
                epgstation_presets(binary),
            ),
        ]
    if recorder == "chinachu":
        return [
            Paste(
                "Chinachu gamma: the hook command (the script is installed); Chinachu has no "
                "start command kamado relies on, so recordings are encoded after they end",
                "Chinachu's config.json",
                f'"recordedCommand": "{CHINACHU_SCRIPT}"\n',
            )
        ]
    if recorder == "edcb":
        return [
            Paste(
                "EDCB: the post-recording batch (chmod 755); EDCB has no start command kamado "
                "relies on, so recordings are encoded after they end",
                "PostRecEnd.sh in the EDCB folder",
                f"#!/bin/sh\nexec {binary} hook edcb {config}\n",
            )
        ]
    return []


def epgstation_presets(binary: str) -> str:
    """EPGStation encode presets that run kamado (one per kamado profile offered)."""
    config = f"--config {CONFIG}"
    presets = (("kamado-h264", "h264-auto"), ("kamado-h264-cpu", "h264-x264"))
    return "".join(
        f"    - name: {name}\n"
        f"      cmd: '{binary} epgstation encode --profile {profile} {config}'\n"
        "      suffix: .mp4\n"
        "      rate: 10\n"
        for name, profile in presets
    )


def chinachu_script(binary: str) -> str:
    """The wrapper Chinachu's recordedCommand runs (it passes the file and the programme)."""
    return (
        "#!/bin/sh\n"
        "# Written by `kamado setup recorder`: Chinachu runs <script> <file> <programme JSON>.\n"
        f'exec {binary} hook chinachu "$1" "$2" --config {CONFIG} >/dev/null 2>&1\n'
    )
