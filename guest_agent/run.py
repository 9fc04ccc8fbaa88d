"""`kamado guest run`: probe at start, then run the worker on the proven queues, guarded."""

from __future__ import annotations

from rich.text import Text

from guest_agent.guard import GpuGuard
from guest_agent.ledger import TaskHooks
from guest_agent.plan import Plan, make_plan
from guest_agent.probe import run_probe
from guest_agent.tables import backends_table
from worker.backends.view import CONF_KEY, backend_lines
from worker.broker.registry import check_login
from worker.celery_app import create_app
from worker.cli.common import err_console, fail
from worker.errors import KamadoError
from worker.runtime.service import HeartbeatHook, run_worker
from worker.settings.model import Settings


def worker_settings(settings: Settings) -> Settings:
    """The settings the worker runs with: backends come from the guest's plan, not config.

    Tasks read ``app.conf.kamado_backends`` when ``worker.backends`` is auto; the guest
    sets it from its plan and updates it per task (guest_agent/ledger.py).
    """
    worker = settings.worker.model_copy(update={"backends": "auto"})
    return settings.model_copy(update={"worker": worker})


def describe(plan: Plan) -> str:
    """One line: the queues and backends a guest worker serves."""
    note = " (claimed in worker.backends)" if plan.claimed else ""
    return f"serving {', '.join(plan.queues)} with {', '.join(b.value for b in plan.usable)}{note}"


def run_guest(
    settings: Settings,
    *,
    concurrency: int | None = None,
    hostname: str | None = None,
    loglevel: str = "INFO",
) -> None:
    """Probe now, refuse when nothing usable was proven, else run the guarded worker."""
    try:
        if settings.broker_url is not None:
            check_login(settings.broker_url.get_secret_value())  # before a probe, not after
        probe = run_probe(settings)
        err_console.print(backends_table(probe.report))
        for hint in probe.hints:
            err_console.print(Text.assemble(("hint: ", "yellow"), hint), soft_wrap=True)
        plan = make_plan(settings, probe)
        run_with = worker_settings(settings)
        app = create_app(run_with)
    except KamadoError as e:
        fail(e)
    err_console.print(describe(plan))
    app.conf.kamado_backends = [b.value for b in plan.usable]
    url = str(app.conf.broker_url)
    beat = HeartbeatHook(run_with, url, list(plan.queues), dict(plan.fps),
                         interval=settings.guest.heartbeat_interval)  # fmt: skip
    beat.problems = list(plan.problems)
    app.conf[CONF_KEY] = backend_lines(plan.fps, beat.problems)  # Flower's worker page
    beat.captions = probe.captions
    TaskHooks(settings, url).connect()
    guard = GpuGuard(app, settings, plan, beat)
    run_worker(
        app,
        run_with,
        list(plan.queues),
        heartbeat=beat,
        concurrency=concurrency,
        hostname=hostname,
        loglevel=loglevel,
        hooks=[guard],
    )
