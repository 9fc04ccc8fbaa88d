"""Celery Flower on kamado's broker: options from Settings, authentication enforced.

Flower runs in this process on the app from :func:`worker.celery_app.create_app`, so it
loads the same broker transport options as every worker (the shortest visibility timeout
on a broker wins, and Flower's inspect calls sweep unacked messages too). Credentials are
set on Flower's options object directly, never on a command line another user could read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery

from worker.admin.task_view import view
from worker.broker.address import broker_url
from worker.celery_app import create_app
from worker.errors import ConfigError
from worker.jobs import ENCODE_TASK
from worker.settings.admin import is_loopback, parse_basic_auth
from worker.settings.model import Settings

BASIC_AUTH_ENV = "KAMADO_FLOWER_BASIC_AUTH"
# The tasks page: the recording (args) and kamado's state words (result) up front.
TASK_COLUMNS = "uuid,state,args,result,worker,received,started,runtime,retries,name"


@dataclass(frozen=True)
class FlowerPlan:
    """What `kamado flower` will run: the broker, Flower's options, and why auth is off."""

    broker_url: str
    options: dict[str, Any]
    unauthenticated: bool


def credentials(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Basic-auth entries: KAMADO_FLOWER_BASIC_AUTH, else ``flower.basic_auth``."""
    raw = environ.get(BASIC_AUTH_ENV, "").strip()
    if raw:
        try:
            return parse_basic_auth(raw)
        except ValueError as e:
            raise ConfigError(f"{BASIC_AUTH_ENV}: {e}") from e
    secret = settings.flower.basic_auth
    return parse_basic_auth(secret.get_secret_value()) if secret else []


def plan(
    settings: Settings,
    *,
    address: str | None = None,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> FlowerPlan:
    """Check authentication and build Flower's options; ConfigError when it must not start."""
    conf = settings.flower
    env = os.environ if environ is None else environ
    # Flower reads FLOWER_* variables after our options and would override them (an
    # address, the credentials, an unauthenticated API): kamado's config is the one source.
    stray = sorted(name for name in env if name.startswith("FLOWER_"))
    if stray:
        raise ConfigError(
            f"flower: unset {', '.join(stray)}; `kamado flower` takes its options from the "
            "[flower] config section and KAMADO_FLOWER_* variables"
        )
    bind = conf.address if address is None else address
    users = credentials(settings, env)
    unauthenticated = not users
    if unauthenticated and not (settings.embedded and is_loopback(bind)):
        where = "the configured broker" if not settings.embedded else f"address {bind}"
        raise ConfigError(
            f"flower: refusing to start without authentication on {where}; set "
            f"flower.basic_auth or {BASIC_AUTH_ENV}=user:password (only a loopback "
            "address on the one-box embedded broker may go without)"
        )
    url = broker_url(settings, embedded=True)
    db = conf.db or settings.state_dir / "flower" / "flower.db"
    options: dict[str, Any] = {
        "address": bind,
        "port": conf.port if port is None else port,
        "basic_auth": users,
        "url_prefix": conf.url_prefix,
        "xheaders": conf.xheaders,
        "persistent": conf.persistent,
        "db": str(db),
        "state_save_interval": conf.state_save_interval,
        "max_tasks": conf.max_tasks,
        "purge_offline_workers": conf.purge_offline_workers,
        "read_only": conf.read_only,
        "task_runtime_metric_buckets": [*conf.task_runtime_metric_buckets, float("inf")],
        "tasks_columns": TASK_COLUMNS,
        "format_task": format_task,
        # Flower would otherwise execute ./flowerconfig.py: kamado has one config file.
        "conf": os.devnull,
        "enable_events": True,
    }
    if conf.cookie_secret is not None:
        options["cookie_secret"] = conf.cookie_secret.get_secret_value()
    if conf.certfile is not None and conf.keyfile is not None:
        options["certfile"] = str(conf.certfile)
        options["keyfile"] = str(conf.keyfile)
    return FlowerPlan(broker_url=url, options=options, unauthenticated=unauthenticated)


def flower_app(settings: Settings, broker_url: str) -> Celery:
    """The Celery app Flower watches: kamado's own, with its transport options."""
    return create_app(settings, broker_url)


def format_task(task: Any) -> Any:
    """Flower's format_task hook: an encode task's recording, profile and kamado's words."""
    if getattr(task, "name", None) == ENCODE_TASK:
        for name, value in view(task).items():
            setattr(task, name, value)
    return task


def show_every_queue() -> None:
    """Make Flower's Broker page and queue-length API list kamado's queues, served or not.

    Flower lists only the queues some online worker consumes (the configured ones only
    when no worker is up), so a backlog on encode.gpu with only software workers up was
    invisible. Flower has no option or hook for it; its one method that names the queues
    gets kamado's configured queues added.
    """
    from flower.views import BaseHandler

    active = BaseHandler.get_active_queue_names
    if getattr(active, "kamado", False):
        return

    def every_queue(handler: Any) -> list[str]:
        configured = {q.name for q in handler.capp.conf.task_queues or [] if q.name}
        return sorted(set(active(handler)) | configured)

    every_queue.kamado = True  # type: ignore[attr-defined]
    BaseHandler.get_active_queue_names = every_queue


def run(settings: Settings, flower_plan: FlowerPlan) -> int:
    """Run Flower in this process until SIGTERM or Ctrl-C; returns its exit code."""
    from flower import command  # noqa: F401  (defines Flower's tornado options)
    from tornado.options import options as tornado_options

    show_every_queue()

    db_dir = Path(flower_plan.options["db"]).parent
    if flower_plan.options["persistent"]:
        db_dir.mkdir(parents=True, exist_ok=True)
    for name, value in flower_plan.options.items():
        setattr(tornado_options, name, value)
    app = flower_app(settings, flower_plan.broker_url)
    try:
        code: int | None = app.start(["flower"])
    finally:
        app.close()
    return int(code or 0)
