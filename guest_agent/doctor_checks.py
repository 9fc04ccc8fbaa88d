"""The guest agent's doctor check: what the last `kamado guest probe` proved on this VM.

The doctor reads the probe's cache and never probes itself (an encode per backend takes
a while, and the running guest agent may hold the GPU).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from guest_agent.probe import CACHE_NAME, GuestProbe
from worker.backends.capabilities import Status
from worker.doctor.findings import Context, Finding, bad, ok
from worker.profiles import Backend

PROBE_FIX = "sudo -u kamado kamado guest probe --refresh (it shows why each backend fails)"


def guest_checks(ctx: Context) -> list[Finding]:
    """A hardware backend proven in the VM, else encode.gpu jobs wait (with the reasons)."""
    if ctx.settings is None or "guest" not in ctx.roles:
        return []
    cache = ctx.settings.state_dir / CACHE_NAME
    try:
        probe = GuestProbe.model_validate_json(cache.read_bytes())
    except FileNotFoundError:
        return [bad("probe", str(cache), "no guest probe has run yet", PROBE_FIX, severe=False)]
    except (OSError, ValidationError) as e:
        return [bad("probe", str(cache), f"unreadable: {e}", PROBE_FIX, severe=False)]
    when = datetime.fromtimestamp(probe.probed_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    hardware = [b for b in probe.proven if b in (Backend.QSV, Backend.VAAPI)]
    if hardware:
        names = ", ".join(b.value for b in hardware)
        return [ok("probe", "hardware backends", f"{names} proven ({when})")]
    reasons = "; ".join(
        f"{backend.value}: {report.status.value}" + (f" ({report.reason})" if report.reason else "")
        for backend, report in probe.backends.items()
        if backend in (Backend.QSV, Backend.VAAPI) and report.status is not Status.PROVEN
    )
    fix = "; ".join([*probe.hints, PROBE_FIX]) if probe.hints else PROBE_FIX
    return [
        bad(
            "probe",
            "hardware backends",
            f"none proven ({when}): {reasons or 'not probed'}; encode.gpu jobs would wait",
            fix,
        )
    ]
