"""`kamado setup recorder`: the scheduler role's part of `kamado setup`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

# A host name, IPv4 address or bracketed IPv6 address: it goes into the broker URL.
HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]")


def register(setup_app: typer.Typer) -> None:
    """Add `recorder` to the `setup` group."""
    setup_app.command("recorder")(recorder)


def recorder(
    recorder: Annotated[
        str, typer.Option(help="the recording software: epgstation, chinachu, edcb or none")
    ] = "epgstation",
    recorder_user: Annotated[
        str, typer.Option(help="the user the recorder (and so its hook) runs as; '' for none")
    ] = "",
    broker_host: Annotated[
        str, typer.Option(help="this box's address as the host and the VM reach it")
    ] = "127.0.0.1",
    broker_port: Annotated[int, typer.Option(min=1, max=65535)] = 6379,
    state_dir: Annotated[str, typer.Option()] = "/var/lib/kamado",
    source: Annotated[Path | None, typer.Option(help="kamado's checkout")] = None,
    account: Annotated[
        str, typer.Option(help="the services' user and group", hidden=True)
    ] = "kamado",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print every action, change nothing")
    ] = False,
    root: Annotated[
        Path, typer.Option(help="write files under this directory instead of /")
    ] = Path("/"),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The kamado account, the shared spool, the broker password and the hook's lines."""
    from scheduler.setup_recorder import RecorderOptions, setup_recorder
    from worker.cli.common import fail
    from worker.errors import BadInputError, KamadoError
    from worker.setup.cli import finish, system_for
    from worker.setup.source import deploy_dir, kamado_binary

    if recorder not in ("epgstation", "chinachu", "edcb", "none"):
        fail(BadInputError(f"--recorder {recorder}: use epgstation, chinachu, edcb or none"))
    if not HOST.fullmatch(broker_host):
        fail(BadInputError(f"--broker-host {broker_host!r}: give a host name or an IP address"))
    if not state_dir.startswith("/"):
        fail(BadInputError(f"--state-dir {state_dir}: must be an absolute path"))
    system = system_for(root, dry_run)
    try:
        opts = RecorderOptions(
            recorder=recorder,
            recorder_user=recorder_user,
            broker_host=broker_host,
            broker_port=broker_port,
            listen=""
            if broker_host in ("127.0.0.1", "localhost", "[::1]")
            else broker_host.strip("[]"),
            state_dir=state_dir.rstrip("/") or "/",
            binary=kamado_binary(),
            redis_template=deploy_dir(source) / "redis" / "kamado.conf",
            account=account,
        )
        pastes = setup_recorder(system, opts)
    except KamadoError as e:
        fail(e)
    finish(system, pastes, as_json)
