"""`kamado setup ...`: the worker role's setup commands and the group other roles add to."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from worker.cli.common import ConfigOption, JsonOption, fail, settings_or_exit
from worker.errors import BadInputError, KamadoError
from worker.settings.staging import NAME_PATTERN
from worker.setup.location import LocationOptions, setup_location
from worker.setup.report import Paste, show
from worker.setup.source import deploy_dir, kamado_binary
from worker.setup.system import System
from worker.setup.units import ROLE_UNITS, setup_units

__all__ = ["finish", "system_for"]

app = typer.Typer(
    help="Put this box into the shape docs/deploy.md describes; every step is shown, and "
    "running it again changes nothing.",
    no_args_is_help=True,
)

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="print every action, change nothing")]
RootOption = Annotated[
    Path,
    typer.Option(
        "--root", help="write files under this directory instead of / (accounts stay real)"
    ),
]
AccountOption = Annotated[
    str, typer.Option("--account", help="the services' user and group", hidden=True)
]
SourceOption = Annotated[
    Path | None,
    typer.Option("--source", help="kamado's checkout (default: this code's, /opt/kamado/src)"),
]


def register(root: typer.Typer) -> None:
    """Add `setup` to the root app, with the subcommands every installed role provides."""
    from importlib.metadata import entry_points

    have = {info.name for info in app.registered_commands}
    for ep in sorted(entry_points(group="kamado.cli.setup"), key=lambda e: e.name):
        if ep.name in have:
            continue  # a second root app in this process (tests build several)
        add: Callable[[typer.Typer], None] = ep.load()
        add(app)
    root.add_typer(app, name="setup")


def system_for(root: Path, dry_run: bool) -> System:
    """The System a command changes; --root must be an existing directory."""
    if not root.is_dir():
        fail(BadInputError(f"--root {root}: not a directory"))
    if not dry_run and os.geteuid() != 0:
        fail(
            BadInputError(
                "kamado setup creates accounts and root-owned files: run it with sudo "
                "(or add --dry-run to see what it would do)"
            )
        )
    return System(root, dry_run=dry_run)


def finish(system: System, pastes: list[Paste], as_json: bool, **extra: object) -> None:
    """Print what was done and what to paste."""
    show(system, pastes, as_json=as_json, extra=dict(extra))


@app.command("location")
def location(
    name: Annotated[str, typer.Argument(help="the location's name in [staging.locations]")],
    host: Annotated[str, typer.Option(help="the recorder's host name or address")],
    remote_dir: Annotated[
        str, typer.Option(help="the recordings directory on that host (the location's root)")
    ],
    recorder_path: Annotated[
        str, typer.Option(help="how the recorder names that directory (default: --remote-dir)")
    ] = "",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 22,
    user: Annotated[str, typer.Option(help="the SFTP account on that host")] = "kamado",
    key_file: Annotated[str, typer.Option(help="default: /etc/kamado/<name>_ed25519")] = "",
    known_hosts: Annotated[str, typer.Option()] = "/etc/kamado/known_hosts",
    read_only: Annotated[bool, typer.Option(help="outputs are not written there")] = False,
    account: AccountOption = "kamado",
    dry_run: DryRunOption = False,
    root: RootOption = Path("/"),
    as_json: JsonOption = False,
) -> None:
    """A key pair kamado can read, the host's key in known_hosts, and the blocks to paste."""
    if not NAME_PATTERN.match(name):
        fail(BadInputError(f"location name {name!r}: use letters, digits, '.', '_' or '-'"))
    for label, value in (("--remote-dir", remote_dir), ("--recorder-path", recorder_path)):
        if value and not value.startswith("/"):
            fail(BadInputError(f"{label} {value}: must be an absolute path"))
    opts = LocationOptions(
        name=name,
        host=host,
        port=port,
        user=user,
        remote_dir=remote_dir,
        recorder_path=recorder_path or remote_dir,
        key_file=key_file or f"/etc/kamado/{name}_ed25519",
        known_hosts=known_hosts,
        writable=not read_only,
        account=account,
    )
    system = system_for(root, dry_run)
    try:
        pastes, keys = setup_location(system, opts)
    except KamadoError as e:
        fail(e)
    fingerprints = [{"type": k.kind, "fingerprint": k.fingerprint} for k in keys]
    pastes.insert(
        0,
        Paste(
            f"{host}'s host keys: compare with `ssh-keygen -lf <key>` run on {host}",
            "check, then keep",
            "".join(f"{k.kind} {k.fingerprint}\n" for k in keys),
        ),
    )
    finish(system, pastes, as_json, host_keys=fingerprints)


@app.command("units")
def units(
    role: Annotated[
        list[str] | None,
        typer.Option(help=f"the roles of this box: {', '.join(ROLE_UNITS)} (repeatable)"),
    ] = None,
    config: ConfigOption = None,
    source: SourceOption = None,
    account: AccountOption = "kamado",
    dry_run: DryRunOption = False,
    root: RootOption = Path("/"),
    as_json: JsonOption = False,
) -> None:
    """The units of this box's roles (and their kamado account, a config to start from)."""
    roles = role or []
    unknown = [r for r in roles if r not in ROLE_UNITS]
    if unknown or not roles:
        fail(BadInputError(f"--role: give one or more of {', '.join(ROLE_UNITS)}"))
    settings = settings_or_exit(config)
    system = system_for(root, dry_run)
    try:
        written = setup_units(system, settings, roles, deploy_dir(source), kamado_binary(), account)
    except KamadoError as e:
        fail(e)
    enable = "sudo systemctl enable --now " + " ".join(u.removesuffix(".service") for u in written)
    finish(system, [Paste("start them", "run on this box", enable + "\n")], as_json, units=written)
