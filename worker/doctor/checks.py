"""The doctor's checks that every box shares: config, example values, access, broker, locations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from worker.doctor.access import blocked
from worker.doctor.findings import Context, Finding, Severity, bad, ok
from worker.errors import BrokerError
from worker.settings import mask_url
from worker.settings_staging import LocalLocation, SftpLocation
from worker.staging_check import check_all

EXAMPLE_VALUE = re.compile(r"change-me|<password>|<a long password>", re.IGNORECASE)
EXAMPLE_HOSTS = re.compile(r"\b(recorder|broker|nas)\.lan\b|hooks\.example\.org")
WORKING_ROLES = {"guest", "worker"}
DOCTOR_TIMEOUT_S = 5.0


def _strings(data: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, f"{prefix}[{i}]")
    elif isinstance(data, str):
        yield prefix, data


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
    findings += example_values(ctx)
    findings += _key_files(ctx)
    findings += _readable(ctx)
    return findings


def example_values(ctx: Context) -> list[Finding]:
    """Values copied from the examples that were never replaced."""
    found = []
    sources = [(str(ctx.config_path), dict(_strings(ctx.raw)))]
    if ctx.env_file is not None:
        sources.append((str(ctx.env_file), ctx.env))
    for source, values in sources:
        for key, value in values.items():
            hit = EXAMPLE_VALUE.search(value) or EXAMPLE_HOSTS.search(value)
            if hit:
                shown = mask_url(value) if "://" in value else hit.group(0)
                found.append(
                    bad(
                        "example value",
                        f"{key} ({source})",
                        f"still the example's {shown!r}",
                        "replace it with this box's value (kamado setup recorder writes the "
                        "broker password, kamado setup location the SFTP host)",
                    )
                )
    return found


def _key_files(ctx: Context) -> list[Finding]:
    if ctx.settings is None:
        return []
    found = []
    for name, loc in ctx.settings.staging.locations.items():
        if not isinstance(loc, SftpLocation):
            continue
        for label, path in (("key_file", loc.key_file), ("known_hosts", loc.known_hosts)):
            if not path.is_file():
                found.append(
                    bad(
                        "location files",
                        f"staging.locations.{name}.{label}",
                        f"{path}: no such file",
                        f"kamado setup location {name} --host {loc.host} --remote-dir {loc.root}",
                    )
                )
            elif why := _user_blocked(ctx.service_user, path, "r"):
                found.append(
                    bad(
                        "location files",
                        str(path),
                        why,
                        f"sudo chgrp kamado {path} && sudo chmod g+r {path}",
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
    files = [p for p in (ctx.config_path, ctx.env_file) if p is not None]
    found = []
    for piece, user in users:
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
    findings = _local_access(ctx)
    for result in check_all(ctx.settings.staging):
        severity = Severity.OK if result.ok else Severity.FAIL
        findings.append(
            Finding(
                f"location {result.check}", result.location, severity, result.detail, result.fix
            )
        )
    return findings


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
                "KAMADO_BROKER_URL=redis://kamado:PASSWORD@HOST:6379/0 in "
                f"{ctx.env_file or '/etc/kamado/kamado.env'} (kamado setup recorder prints it)",
            )
        ]
    from worker.registry import Registry, redis_client

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
