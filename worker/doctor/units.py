"""The doctor's unit checks: each role's unit installed, its binary there, its drop-in current.

Under ``ProtectSystem=strict`` a unit writes only its state directory and its
``ReadWritePaths=``; `kamado locations check` run by hand cannot see that, so a local
location it calls writable may still be read-only for the worker's unit.
"""

from __future__ import annotations

from pathlib import Path

from worker.doctor.findings import Context, Finding, bad, ok
from worker.setup.units import (
    ROLE_UNITS,
    SHARED_STATE_MODE,
    UNIT_DIR,
    WRITING_UNITS,
    is_recorder,
    writable_paths,
)


def _unit_values(text: str, key: str) -> list[str]:
    return [
        line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith(f"{key}=")
    ]


def unit_checks(ctx: Context) -> list[Finding]:
    """Every unit of the box's roles, as `kamado setup units` installs it."""
    if ctx.settings is None:
        return []
    found = []
    units_dir = ctx.root / UNIT_DIR.lstrip("/")
    for role in sorted(r for r in ctx.roles if r in ROLE_UNITS):
        fix = f"sudo kamado setup units --role {role}"
        for unit in ROLE_UNITS[role]:
            path = units_dir / unit
            if not path.is_file():
                # a warning: the role may run another way (containers, by hand)
                found.append(bad("unit", unit, f"{path}: not installed", fix, severe=False))
                continue
            binary = next(iter(_unit_values(path.read_text(encoding="utf-8"), "ExecStart")), "")
            program = Path(binary.split()[0]) if binary else Path("(none)")
            if not program.is_file():
                found.append(bad("unit", unit, f"ExecStart runs {program}, which is missing", fix))
                continue
            missing = _read_only(ctx, units_dir, unit)
            if missing:
                found.append(
                    bad(
                        "unit",
                        unit,
                        f"ProtectSystem=strict keeps {', '.join(missing)} read-only for it "
                        "(no ReadWritePaths=)",
                        fix,
                    )
                )
            else:
                found.append(ok("unit", unit, f"installed, runs {program}"))
    return found + _shared_state(ctx, units_dir)


def _effective(units_dir: Path, unit: str, key: str) -> str:
    """A [Service] setting as systemd sees it: the unit's, then its drop-ins' in order."""
    value = ""
    for path in [units_dir / unit, *sorted((units_dir / f"{unit}.d").glob("*.conf"))]:
        for found in _unit_values(path.read_text(encoding="utf-8"), key):
            value = found
    return value


def _shared_state(ctx: Context, units_dir: Path) -> list[Finding]:
    """On the recorder, no unit may reset the shared state directory's mode at its start."""
    if not is_recorder(units_dir, sorted(ctx.roles)):
        return []
    found = []
    for unit in (u for units in ROLE_UNITS.values() for u in units):
        if not (units_dir / unit).is_file():
            continue
        mode = _effective(units_dir, unit, "StateDirectoryMode")
        if mode.lstrip("0") != SHARED_STATE_MODE:
            found.append(
                bad(
                    "unit",
                    f"{unit} StateDirectoryMode",
                    f"{mode or '0755'}: systemd resets the state directory to it at each "
                    "start, and the recorder's hook can no longer write the spool",
                    "sudo kamado setup units --role recorder (its drop-in keeps 2770)",
                )
            )
    return found


def _read_only(ctx: Context, units_dir: Path, unit: str) -> list[str]:
    """Directories this box's worker writes that the unit's drop-ins do not open."""
    assert ctx.settings is not None
    if unit not in WRITING_UNITS:
        return []
    opened: set[str] = set()
    for drop_in in sorted((units_dir / f"{unit}.d").glob("*.conf")):
        values = _unit_values(drop_in.read_text(encoding="utf-8"), "ReadWritePaths")
        opened.update(p.lstrip("-") for value in values for p in value.split())
    wanted = writable_paths(ctx.settings)
    return [p for p in wanted if not any(Path(p).is_relative_to(o) for o in opened)]
