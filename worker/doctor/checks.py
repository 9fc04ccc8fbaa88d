"""The doctor's checks that every box shares: config, example values, access, broker, locations."""

from __future__ import annotations

from pathlib import Path

from worker.doctor.access import blocked
from worker.doctor.findings import Context, Finding, Severity, bad, ok
from worker.errors import BrokerError
from worker.settings.lint import lint
from worker.settings.model import mask_url
from worker.settings.staging import LocalLocation, SftpLocation
from worker.setup.system import user_exists
from worker.staging.check import check_all

WORKING_ROLES = {"guest", "worker"}
DOCTOR_TIMEOUT_S = 5.0


def config_checks(ctx: Context) -> list[Finding]:
    """The config is valid, holds no example values, and each piece's user can read it."""
    where = str(ctx.config_path) if ctx.config_path else "(no config file)"
    if ctx.config_problems:
        findings = [
            bad("config", where, problem, f"edit {where}, then run kamado config check")
            for problem in ctx.config_problems
        ]
    else:
        findings = [ok("config", where, "valid")]
    findings += lint_findings(ctx)
    findings += _key_files(ctx)
    findings += _readable(ctx)
    findings += _secret_modes(ctx)
    return findings


def _secret_modes(ctx: Context) -> list[Finding]:
    """The files that hold the broker password are not readable by every user."""
    found = []
    for path in (p for p in (ctx.config_path, ctx.env_file) if p is not None and p.is_file()):
        if path.stat().st_mode & 0o004:
            found.append(
                bad(
                    "secrets",
                    str(path),
                    "readable by every user on this box, and it holds (or may hold) the "
                    "broker password",
                    f"sudo chown root:{ctx.service_user} {path} && sudo chmod 0640 {path}",
                    severe=False,
                )
            )
    return found


def lint_findings(ctx: Context) -> list[Finding]:
    """`kamado config check`'s run-time rules (example values, missing files, unknown names)."""
    if ctx.settings is None:
        return []
    source = str(ctx.env_file) if ctx.env_file else ""
    return [
        bad("config", p.field, p.message, p.fix, severe=p.severity == "error")
        for p in lint(ctx.settings, ctx.env if ctx.env_file else None, source)
    ]


def _key_files(ctx: Context) -> list[Finding]:
    """SFTP key files as the services' user sees them (lint checks them as the caller)."""
    if ctx.settings is None:
        return []
    found = []
    for name, loc in ctx.settings.staging.locations.items():
        if not isinstance(loc, SftpLocation):
            continue
        for path in (loc.key_file, loc.known_hosts):
            if path.is_file() and (why := _user_blocked(ctx.service_user, path, "r")):
                found.append(
                    bad(
                        "location files",
                        f"{name}: {path}",
                        why,
                        f"kamado setup location {name} (the key is {ctx.service_user}'s, 0600)",
                    )
                )
    return found


def _user_blocked(user: str, path: Path, want: str) -> str | None:
    try:
        return blocked(user, path, want)
    except KeyError:
        return f"user {user} does not exist on this box"


def _readable(ctx: Context) -> list[Finding]:
    users = [("the services", ctx.service_user)]
    if ctx.hook_user and "recorder" in ctx.roles:
        users.append(("the recorder's hook", ctx.hook_user))
    files = [p for p in (ctx.config_path, ctx.env_file) if p is not None and p.is_file()]
    found = []
    for piece, user in users:
        if not user_exists(user):
            found.append(
                bad(
                    "account",
                    user,
                    f"{piece} run as {user}, which does not exist on this box",
                    "sudo kamado setup units --role ROLE (or kamado setup recorder on the "
                    "recorder) creates the kamado account"
                    if user == ctx.service_user
                    else f"pass the user the recorder runs as: --hook-user NAME (not {user})",
                )
            )
            continue
        for path in files:
            why = _user_blocked(user, path, "r")
            if why is None:
                found.append(ok("access", f"{path} as {user}", f"{piece} can read it"))
            else:
                found.append(
                    bad(
                        "access",
                        f"{path} as {user}",
                        f"{piece}: {why}",
                        f"sudo usermod -aG kamado {user}; files 0640 root:kamado in a "
                        "0750 root:kamado /etc/kamado (kamado setup recorder does this)",
                    )
                )
    return found


def location_checks(ctx: Context) -> list[Finding]:
    """`kamado locations check` on a box that encodes (guest VM, software worker)."""
    if ctx.settings is None or not (ctx.roles & WORKING_ROLES):
        return []
    findings = _local_access(ctx) + _output_dir(ctx)
    for result in check_all(ctx.settings.staging):
        severity = Severity.OK if result.ok else Severity.FAIL
        findings.append(
            Finding(
                f"location {result.check}", result.location, severity, result.detail, result.fix
            )
        )
    return findings


def _output_dir(ctx: Context) -> list[Finding]:
    """encode.output_dir exists (kamado does not create it) and the services may write it."""
    assert ctx.settings is not None
    out = ctx.settings.encode.output_dir
    if out is None:
        return []
    user = ctx.service_user
    fix = f"sudo install -d -o {user} -g {user} -m 0750 {out}"
    if not out.is_dir():
        return [bad("output dir", str(out), "encode.output_dir does not exist", fix)]
    why = _user_blocked(user, out, "rw")
    if why is not None:
        return [bad("output dir", f"{out} as {user}", why, fix)]
    return [ok("output dir", f"{out} as {user}", f"{user} may write it")]


def _local_access(ctx: Context) -> list[Finding]:
    """Local locations as the services' user sees them (the check below runs as the caller)."""
    assert ctx.settings is not None
    found = []
    for name, loc in ctx.settings.staging.locations.items():
        if not isinstance(loc, LocalLocation) or not loc.path.is_dir():
            continue
        want = "rw" if loc.writable else "r"
        why = _user_blocked(ctx.service_user, loc.path, want)
        subject = f"{name} ({loc.path}) as {ctx.service_user}"
        if why is None:
            found.append(ok("location access", subject, f"{ctx.service_user} may {want} it"))
        else:
            found.append(
                bad(
                    "location access",
                    subject,
                    why,
                    f'sudo usermod -aG "$(stat -c %G {loc.path})" {ctx.service_user}, and '
                    f"g+{want}x on {loc.path}",
                )
            )
    return found


def broker_checks(ctx: Context) -> list[Finding]:
    """A broker is configured on a multi-box role, and it answers with these credentials."""
    if ctx.settings is None:
        return []
    url = ctx.settings.broker_url
    if url is None:
        return [
            bad(
                "broker",
                "broker_url",
                "no broker configured: each process would start its own embedded one",
                'broker_url = "redis://kamado:PASSWORD@HOST:6379/0" at the top of '
                f"{ctx.config_path or '/etc/kamado/kamado.toml'} (kamado setup recorder "
                "prints it)",
            )
        ]
    from worker.broker.registry import Registry, redis_client

    raw = url.get_secret_value()
    registry = Registry(redis_client(raw, socket_timeout=DOCTOR_TIMEOUT_S))
    try:
        registry.call("reach the broker", registry.client.ping)
    except BrokerError as e:
        fix = "check the address and that redis-server runs there (bind line, firewall)"
        if "password" in str(e) or "NOAUTH" in str(e) or "WRONGPASS" in str(e):
            fix = (
                "use redis://kamado:PASSWORD@HOST:PORT/0 with the password of the `user "
                "kamado` line in /etc/redis/kamado.conf (the default user is off)"
            )
        return [bad("broker", mask_url(raw), str(e), fix)]
    finally:
        registry.close()
    return [ok("broker", mask_url(raw), "answers PING")]
