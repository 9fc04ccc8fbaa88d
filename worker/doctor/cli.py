"""`kamado doctor`: run every installed role's checks on this box and print findings with fixes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from worker.cli.common import EXIT_FAILED, ConfigOption, JsonOption, console, fail, print_json
from worker.doctor.findings import ROLES, Context, Finding, Severity
from worker.errors import BadInputError, ConfigError, KamadoError
from worker.settings.file import find_config, load_env_file
from worker.settings.model import load_settings
from worker.setup.units import ROLE_UNITS, UNIT_DIR

ENV_FILE = Path("/etc/kamado/kamado.env")
Check = Callable[[Context], list[Finding]]
STYLE = {Severity.OK: "green", Severity.WARN: "yellow", Severity.FAIL: "red"}


def register(root: typer.Typer) -> None:
    """Add `doctor` to the root app."""
    root.command("doctor")(doctor)


def installed_roles(root: Path = Path("/")) -> set[str]:
    """The roles whose units are installed on this box."""
    units_dir = root / UNIT_DIR.lstrip("/")
    return {
        role
        for role, units in ROLE_UNITS.items()
        if any((units_dir / unit).is_file() for unit in units)
    }


def build_context(
    config: Path | None, env_file: Path | None, roles: set[str], hook_user: str, service_user: str
) -> Context:
    """Load the env file into this process (its values win, as in the units), then the config."""
    env = load_env_file(env_file) if env_file is not None else {}
    path = find_config(config)
    try:
        settings, problems = load_settings(path), []
    except ConfigError as e:
        settings, problems = None, e.problems
    return Context(
        roles=roles,
        config_path=path,
        env_file=env_file,
        settings=settings,
        config_problems=problems,
        env=env,
        service_user=service_user,
        hook_user=hook_user,
    )


def run_checks(ctx: Context) -> list[Finding]:
    """Every check the installed roles provide, in a stable order."""
    from importlib.metadata import entry_points

    findings: list[Finding] = []
    for ep in sorted(entry_points(group="kamado.doctor"), key=lambda e: e.name):
        try:
            check: Check = ep.load()
        except ImportError:
            continue  # that role's extra (libvirt for the host) is not installed here
        try:
            findings += check(ctx)
        except KamadoError as e:
            findings.append(Finding(ep.name, "(check)", Severity.FAIL, str(e), ""))
    return findings


def doctor(
    config: ConfigOption = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            help="the units' EnvironmentFile (default: /etc/kamado/kamado.env if present)"
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(help=f"this box's roles: {', '.join(ROLES)} (default: the installed units')"),
    ] = None,
    hook_user: Annotated[str, typer.Option(help="the user the recorder's hook runs as")] = "",
    service_user: Annotated[str, typer.Option(help="the user the units run as")] = "kamado",
    root: Annotated[
        Path, typer.Option(help="look for the units under this directory", hidden=True)
    ] = Path("/"),
    as_json: JsonOption = False,
) -> None:
    """Check this box as the users that run each piece; exit 1 if a finding would break a job."""
    roles = set(role or []) or installed_roles(root)
    if unknown := roles - set(ROLES):
        fail(BadInputError(f"--role {', '.join(sorted(unknown))}: use {', '.join(ROLES)}"))
    if env_file is None and ENV_FILE.is_file():
        env_file = ENV_FILE
    try:
        ctx = build_context(config, env_file, roles, hook_user, service_user)
        ctx.root = root
    except KamadoError as e:
        fail(e)
    findings = run_checks(ctx)
    broken = [f for f in findings if f.severity is Severity.FAIL]
    if as_json:
        print_json(
            {
                "ok": not broken,
                "roles": sorted(roles),
                "findings": [f.as_dict() for f in findings],
            }
        )
    else:
        _print(findings, roles)
    if broken:
        raise typer.Exit(EXIT_FAILED)


def _print(findings: list[Finding], roles: set[str]) -> None:
    console.print(f"roles: {', '.join(sorted(roles)) or '(none: pass --role)'}", markup=False)
    table = Table(show_lines=False)
    for column in ("check", "subject", "result", "detail / fix"):
        table.add_column(column, overflow="fold")
    for f in findings:
        detail = f.detail if not f.fix else f"{f.detail}\nfix: {f.fix}"
        table.add_row(
            f.check, Text(f.subject), Text(f.severity.value, STYLE[f.severity]), Text(detail)
        )
    console.print(table)
    failed = sum(f.severity is Severity.FAIL for f in findings)
    console.print(
        f"{failed} finding(s) would break a job" if failed else "nothing would break a job",
        markup=False,
    )
