"""The scheduler role's doctor checks: the shared spool, and queues that no worker serves."""

from __future__ import annotations

import sys
from pathlib import Path

from scheduler.queues import BrokerState
from scheduler.unserved import unserved_queues
from worker.broker.registry import Registry, redis_client
from worker.doctor.access import blocked
from worker.doctor.findings import Context, Finding, bad, ok
from worker.errors import BrokerError
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.settings.model import spool_dir
from worker.setup.source import kamado_binary

TIMEOUT_S = 5.0


def recorder_checks(ctx: Context) -> list[Finding]:
    """The hook's user and the service may both write the spool and the hook log."""
    if ctx.settings is None or "recorder" not in ctx.roles:
        return []
    spool = spool_dir(ctx.settings)
    logs = ctx.settings.state_dir / "logs"
    users = [("the service", ctx.service_user)]
    findings: list[Finding] = []
    if ctx.hook_user:
        users.append(("the recorder's hook", ctx.hook_user))
    else:
        findings.append(
            bad(
                "hook user",
                "--hook-user",
                "not given: cannot check what the recorder's hook may do",
                "run kamado doctor --hook-user USER with the user the recorder runs as "
                "(EPGStation's, Chinachu's, EDCB's)",
                severe=False,
            )
        )
    for piece, user in users:
        for directory in (spool, logs):
            findings.append(_writable(piece, user, directory))
    if ctx.hook_user:
        findings.append(_runnable(ctx.hook_user))
    return findings


def _runnable(user: str) -> Finding:
    """The hook line calls this venv's kamado: its user must be able to run that Python."""
    script = Path(kamado_binary())
    interpreter = Path(sys.executable).resolve()
    subject = f"{script} as {user}"
    for path in (script, interpreter):
        try:
            why = blocked(user, path, "x")
        except KeyError:
            why = f"user {user} does not exist on this box"
        if why is not None:
            return bad(
                "hook command",
                subject,
                f"the recorder's hook cannot run kamado: {why}",
                "install kamado in a venv every user may run, made from the system Python: "
                "sudo python3 -m venv /opt/kamado/venv (docs/deploy.md, section 1)",
            )
    return ok("hook command", subject, f"runs {interpreter}")


def _writable(piece: str, user: str, directory: Path) -> Finding:
    subject = f"{directory} as {user}"
    try:
        why = blocked(user, directory, "rw")
    except KeyError:
        why = f"user {user} does not exist on this box"
    if why is None:
        return ok("access", subject, f"{piece} can write it")
    return bad(
        "access",
        subject,
        f"{piece}: {why}",
        f"sudo kamado setup recorder --recorder-user {user} (group kamado, "
        f"{directory} kamado:kamado 2770)",
    )


def queue_checks(ctx: Context) -> list[Finding]:
    """Queues holding jobs that no live worker consumes (they would wait forever)."""
    if ctx.settings is None or ctx.settings.broker_url is None:
        return []
    url = ctx.settings.broker_url.get_secret_value()
    registry = Registry(redis_client(url, socket_timeout=TIMEOUT_S))
    try:
        found = unserved_queues(registry, BrokerState(registry))
    except BrokerError:
        return []  # the broker check reports it
    finally:
        registry.close()
    bad_queues = {u.queue for u in found}
    findings = [bad("queue", f"queue {u.queue}", u.reason, u.fix) for u in found]
    findings += [
        ok("queue", f"queue {queue}", "empty, or a live worker consumes it")
        for queue in (QUEUE_GPU, QUEUE_CPU)
        if queue not in bad_queues
    ]
    return findings
