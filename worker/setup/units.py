"""`kamado setup units`: the shipped systemd units and the ReadWritePaths their locations need."""

from __future__ import annotations

from pathlib import Path

from worker.settings.model import Settings
from worker.settings.staging import LocalLocation
from worker.setup.account import KAMADO, STARTING_CONFIG, ensure_account, ensure_config
from worker.setup.system import System, tool

UNIT_DIR = "/etc/systemd/system"
SHIPPED_BINARY = "/opt/kamado/venv/bin/kamado"
DROP_IN = "kamado-paths.conf"
SHARED_STATE_MODE = "2770"
SHARED_UMASK = "0007"
STATE_DIRECTORY = Path("/var/lib/kamado")
ROLE_UNITS = {
    "recorder": ["kamado-scheduler.service", "kamado-flower.service"],
    "host": ["kamado-host-agent.service"],
    "guest": ["kamado-guest-agent.service"],
    "worker": ["kamado-worker.service"],
}
# Units that write outputs to locations: ProtectSystem=strict makes those read-only.
WRITING_UNITS = ("kamado-worker.service", "kamado-guest-agent.service")


def writable_paths(settings: Settings) -> list[str]:
    """Local directories this box's workers write: writable local locations, output_dir."""
    found = [
        str(loc.path)
        for loc in settings.staging.locations.values()
        if isinstance(loc, LocalLocation) and loc.writable
    ]
    if settings.encode.output_dir is not None:
        found.append(str(settings.encode.output_dir))
    # The units' StateDirectory= is /var/lib/kamado, the services' home: the defaults
    # (under ~) land there; a directory set elsewhere needs the drop-in.
    own = []
    if "scratch_dir" in settings.staging.model_fields_set:
        own.append(settings.staging.scratch_dir)
    if "state_dir" in settings.model_fields_set:
        own.append(settings.state_dir)
    found += [str(p) for p in own if not p.is_relative_to(STATE_DIRECTORY)]
    return sorted(dict.fromkeys(found))


def drop_in(paths: list[str], *, shared: bool) -> str:
    """The drop-in text, or "" when the unit needs none.

    ``paths``: ReadWritePaths (a leading '-' keeps a missing mount from failing the
    unit). ``shared``: the state directory is the recorder's spool, shared with the
    hook's user; systemd re-applies StateDirectoryMode= at every start, so each unit
    on the box must keep it 2770 (and create files its group can use).
    """
    lines = [f"ReadWritePaths=-{p}" for p in paths]
    if shared:
        lines += [f"StateDirectoryMode={SHARED_STATE_MODE}", f"UMask={SHARED_UMASK}"]
    if not lines:
        return ""
    return (
        "# Written by `kamado setup units` from the config (rerun it after changing\n"
        "# locations or output_dir).\n[Service]\n" + "".join(f"{x}\n" for x in lines)
    )


def is_recorder(units_dir: Path, roles: list[str]) -> bool:
    """True on a box whose state directory is the recorder's spool (the scheduler's)."""
    return "recorder" in roles or (units_dir / "kamado-scheduler.service").is_file()


def starting_config(roles: list[str], deploy: Path) -> str:
    """The example a new box's kamado.toml starts from: the host's or the guest's, else a stub."""
    examples = {"host": deploy / "host.example.toml", "guest": deploy / "guest/kamado.guest.toml"}
    chosen = [examples[r] for r in roles if r in examples]
    return chosen[0].read_text(encoding="utf-8") if len(chosen) == 1 else STARTING_CONFIG


def setup_units(
    system: System,
    settings: Settings,
    roles: list[str],
    deploy: Path,
    binary: str,
    account: str = KAMADO,
) -> list[str]:
    """The account the units run as, a config to start from, the units and their drop-ins."""
    ensure_account(system, account=account)
    ensure_config(system, account, starting_config(roles, deploy))
    systemd_dir = deploy / "systemd"
    units = [unit for role in roles for unit in ROLE_UNITS[role]]
    changed = False
    paths = writable_paths(settings)
    shared = is_recorder(system.path(UNIT_DIR), roles)
    for unit in units:
        text = (systemd_dir / unit).read_text(encoding="utf-8")
        if binary != SHIPPED_BINARY:
            text = text.replace(SHIPPED_BINARY, binary)
        changed |= system.ensure_file(
            f"{UNIT_DIR}/{unit}", text, owner="root", group="root", mode=0o644, replace=True
        )
        target = f"{UNIT_DIR}/{unit}.d/{DROP_IN}"
        text = drop_in(paths if unit in WRITING_UNITS else [], shared=shared)
        if text:
            changed |= system.ensure_file(
                target, text, owner="root", group="root", mode=0o644, replace=True
            )
        else:
            system.note(target, "not needed (no writable local location, not a recorder)")
    if not changed:
        system.note("systemctl daemon-reload", "not needed (no unit changed)")
    elif system.root != Path("/"):
        system.note("systemctl daemon-reload", f"skipped (units written under {system.root})")
    else:
        system.run([tool("systemctl"), "daemon-reload"], "systemctl daemon-reload")
    return units
