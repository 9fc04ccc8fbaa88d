"""`kamado host ...`: passthrough preflight, the domain XML, lifecycle and the agent loop."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from host_agent.domain import domain_xml
from host_agent.errors import DomainNotFound, HostAgentError
from host_agent.preflight import LibvirtFacts, Report, Status, run_preflight
from worker.broker.registry import check_login
from worker.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    fail,
    print_json,
    settings_or_exit,
)
from worker.errors import BrokerError, ConfigError, KamadoError
from worker.settings.host import HostSettings
from worker.settings.model import Settings

if TYPE_CHECKING:
    from host_agent.lifecycle import Hypervisor

app = typer.Typer(
    help="The KVM host: passthrough checks, the VM's XML and lifecycle, the agent loop.",
    no_args_is_help=True,
)
STATUS_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "red"}


def register(root: typer.Typer) -> None:
    """Add the `host` command group to the root app."""
    root.add_typer(app, name="host")


def hypervisor_for(host: HostSettings) -> Hypervisor:
    """An unopened libvirt connection; libvirt-python is imported only here, on the host."""
    try:
        from host_agent.lifecycle import Hypervisor
    except ImportError as e:
        fail(
            ConfigError(
                f"libvirt-python is not installed ({e}): sudo apt-get install libvirt-dev "
                "pkg-config gcc python3-dev, then install the host extra from the checkout: "
                "sudo /opt/kamado/venv/bin/pip install '/opt/kamado/src[host]'"
            )
        )
    return Hypervisor(host.libvirt_uri)


def libvirt_facts(host: HostSettings) -> LibvirtFacts:
    """Connect to libvirt and read the domain capabilities preflight needs."""
    hypervisor = hypervisor_for(host)
    try:
        hypervisor.open()
    except HostAgentError as e:
        return LibvirtFacts(error=str(e))
    try:
        caps = hypervisor.domain_capabilities(host.vm.machine, host.vm.domain_type)
    except HostAgentError:
        caps = None
    finally:
        hypervisor.close()
    return LibvirtFacts(domain_capabilities=caps)


def _print_report(report: Report) -> None:
    table = Table("check", "status", "detail", "fix", show_lines=False)
    for check in report.checks:
        style = STATUS_STYLE[check.status]
        status = Text(check.status.value, style=style)
        # Details quote ids and config keys in brackets ([144d:a808]): text, not markup.
        table.add_row(Text(check.name), status, Text(check.detail), Text(check.fix))
    console.print(table)
    console.print("preflight passed" if report.ok else "[red]preflight failed[/]")


SysfsRoot = Annotated[
    Path, typer.Option(help="read /sys, /proc and /dev under this root (a fixture tree)")
]


def refuse_host_devices(report: Report) -> None:
    """Exit 2 when the VM would take a device the host uses (its disk, its network)."""
    taken = [c for c in report.checks if c.name.startswith("host-use") and c.status == Status.FAIL]
    if taken:
        reasons = "; ".join(f"{c.detail} (fix: {c.fix})" for c in taken)
        fail(ConfigError(f"refusing to start the VM: {reasons}"))


@app.command("preflight")
def preflight(
    config: ConfigOption = None,
    sysfs_root: SysfsRoot = Path("/"),
    no_libvirt: Annotated[bool, typer.Option(help="skip the libvirt checks")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check that this host can pass the iGPU to the VM; exit 0 only if nothing failed."""
    settings = settings_or_exit(config)
    if not sysfs_root.is_dir():
        fail(ConfigError(f"--sysfs-root {sysfs_root}: not a directory"))
    probe = None if no_libvirt else (lambda: libvirt_facts(settings.host))
    report = run_preflight(settings.host, sysfs_root, probe)
    if as_json:
        print_json({"ok": report.ok, "checks": [c.model_dump(mode="json") for c in report.checks]})
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else EXIT_FAILED)


@app.command("xml")
def xml(config: ConfigOption = None) -> None:
    """Print the libvirt domain XML the config describes."""
    settings = settings_or_exit(config)
    sys.stdout.write(domain_xml(settings.host.vm))


def _connected(host: HostSettings) -> Hypervisor:
    hypervisor = hypervisor_for(host)
    try:
        hypervisor.open()
    except HostAgentError as e:
        fail(e)
    return hypervisor


@app.command("up")
def up(
    config: ConfigOption = None,
    start: Annotated[bool, typer.Option(help="start it after defining")] = True,
    sysfs_root: SysfsRoot = Path("/"),
) -> None:
    """Define (or update) the VM from config and start it; never with a host's own device."""
    settings = settings_or_exit(config)
    vm = settings.host.vm
    if start:
        refuse_host_devices(run_preflight(settings.host, sysfs_root))
    hypervisor = _connected(settings.host)
    try:
        hypervisor.define(domain_xml(vm), vm.name)
        if start and not hypervisor.status(vm.name).active:
            hypervisor.start(vm.name)
        status = hypervisor.status(vm.name)
    except HostAgentError as e:
        fail(e)
    finally:
        hypervisor.close()
    console.print(f"{vm.name}: {status.state.value} ({status.reason})", markup=False)


@app.command("down")
def down(
    config: ConfigOption = None,
    timeout: Annotated[
        float | None, typer.Option(help="seconds before destroy; default host.shutdown_timeout")
    ] = None,
    force: Annotated[bool, typer.Option(help="destroy when the timeout passes")] = True,
) -> None:
    """Shut the VM down gracefully; destroy it if it ignores the request."""
    settings = settings_or_exit(config)
    vm = settings.host.vm
    hypervisor = _connected(settings.host)
    try:
        how = hypervisor.stop(vm.name, timeout or settings.host.shutdown_timeout, force=force)
    except HostAgentError as e:
        fail(e)
    finally:
        hypervisor.close()
    console.print(f"{vm.name}: {how}", markup=False)


def collect_status(settings: Settings) -> dict[str, Any]:
    """The VM's libvirt state, guest agent answer and the heartbeats in Redis."""
    host = settings.host
    from host_agent.redis_state import RedisState

    data: dict[str, Any] = {"name": host.vm.name, "uri": host.libvirt_uri}
    hypervisor = hypervisor_for(host)
    try:
        hypervisor.open()
        status = hypervisor.status(host.vm.name)
        data |= {"state": status.state.value, "reason": status.reason}
        data["guest_agent"] = hypervisor.guest_ping(host.vm.name) if status.active else False
    except DomainNotFound:
        data |= {"state": "absent", "reason": "not defined"}
    except HostAgentError as e:
        data |= {"state": "unknown", "error": str(e)}
    finally:
        hypervisor.close()
    if settings.broker_url is None:
        return data
    state = RedisState(settings.broker_url.get_secret_value())
    data["guest_worker"] = host.guest_worker  # whose heartbeat "worker" is
    try:
        worker = state.worker_heartbeat(host.guest_worker)
        agent = state.host_heartbeat(host.agent_name or socket.gethostname())
        data["worker"] = worker.model_dump(mode="json") if worker else None
        data["agent"] = agent.model_dump(mode="json") if agent else None
    except BrokerError as e:
        data["broker_error"] = str(e)
    finally:
        state.close()
    return data


@app.command("status")
def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The VM's state and reason, guest reachability and heartbeats."""
    settings = settings_or_exit(config)
    data = collect_status(settings)
    if as_json:
        print_json(data)
    else:
        for key, value in data.items():
            console.print(f"{key}: {value}", markup=False, soft_wrap=True)
    if data["state"] == "unknown":
        raise typer.Exit(EXIT_FAILED)


@app.command("run")
def run(config: ConfigOption = None, sysfs_root: SysfsRoot = Path("/")) -> None:
    """Run the agent: start the VM for work, stop it when idle, restart it after a crash."""
    settings = settings_or_exit(config)
    if settings.broker_url is None:
        fail(ConfigError("broker_url: the host agent needs the broker the VM's worker uses"))
    try:
        check_login(settings.broker_url.get_secret_value())
    except KamadoError as e:
        fail(e)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    host = settings.host
    hypervisor = hypervisor_for(host)
    from host_agent.agent import Agent
    from host_agent.redis_state import RedisState

    report = run_preflight(host, sysfs_root, lambda: libvirt_facts(host))
    for check in report.checks:
        if check.status != Status.PASS:
            logging.getLogger("kamado.host_agent").warning(
                "preflight %s: %s: %s", check.status.value, check.name, check.detail
            )
    refuse_host_devices(report)
    agent = Agent(
        host,
        state=RedisState(settings.broker_url.get_secret_value()),
        hypervisor=hypervisor,
        preflight_ok=report.ok,
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        agent.run()
    except KamadoError as e:
        fail(e)
