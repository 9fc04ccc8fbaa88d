"""The host agent's doctor check: the passthrough preflight, as `kamado host preflight` runs it."""

from __future__ import annotations

from worker.doctor.findings import Context, Finding, Severity


def host_checks(ctx: Context) -> list[Finding]:
    """Every preflight check on a KVM host, each with its fix."""
    if ctx.settings is None or "host" not in ctx.roles:
        return []
    from host_agent.cli import libvirt_facts
    from host_agent.preflight import Status, run_preflight

    host = ctx.settings.host
    report = run_preflight(host, libvirt=lambda: libvirt_facts(host))
    severity = {Status.PASS: Severity.OK, Status.WARN: Severity.WARN, Status.FAIL: Severity.FAIL}
    return [
        Finding("preflight", check.name, severity[check.status], check.detail, check.fix)
        for check in report.checks
    ]
