"""The Celery app factory: every kamado process builds its app from the same Settings.

The settings are those a multi-hour encode needs on Redis: JSON only, late acks, one
message prefetched, a visibility timeout above the hard time limit loaded by every
process (the shortest one on a broker wins), cancel of running work on connection loss,
task events on so Flower sees every job, and one queue per capability class.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from worker.broker.keys import PRIORITY_STEPS
from worker.errors import ConfigError
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.settings.model import Settings

__all__ = ["create_app"]


def transport_options(settings: Settings) -> dict[str, Any]:
    """Redis transport options shared by producers, workers, Flower and inspect clients."""
    broker = settings.broker
    return {
        "visibility_timeout": broker.visibility_timeout,
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": broker.health_check_interval,
        "socket_timeout": broker.socket_timeout,
        "socket_connect_timeout": 10,
        # Redis priorities: 0 is most urgent; one list per level so new recordings
        # overtake a backlog.
        "priority_steps": list(PRIORITY_STEPS),
        "queue_order_strategy": "priority",
    }


def celery_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    """The Celery configuration for kamado, as a plain mapping (tests read it too)."""
    backend_url = (
        settings.result_backend_url.get_secret_value()
        if settings.result_backend_url
        else broker_url
    )
    options = transport_options(settings)
    result_options = {
        k: v for k, v in options.items() if k not in ("priority_steps", "queue_order_strategy")
    }
    return {
        "broker_url": broker_url,
        "result_backend": backend_url,
        "broker_transport_options": options,
        "result_backend_transport_options": result_options,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_acks_on_failure_or_timeout": True,
        # A pool child killed mid-encode (OOM, SIGKILL) puts the message back at once;
        # the attempt cap in the job registry stops a file that kills ffmpeg every time.
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # kamado cancels a running encode on connection loss itself, through the lease:
        # an attempt that cannot renew its lease for longer than its TTL kills ffmpeg and
        # never commits. Celery's own switch is off on purpose: when the broker and the
        # result backend share a Redis that restarts, its cancel path raises while
        # announcing the cancel and takes the whole worker down (seen with Celery 5.6),
        # and a short Redis blip would throw away hours of encoding.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_soft_time_limit": settings.encode.soft_time_limit,
        "task_time_limit": settings.encode.time_limit,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "result_extended": True,
        "result_expires": 7 * 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "worker_soft_shutdown_timeout": 30.0,
        "worker_enable_soft_shutdown_on_idle": False,
        "worker_hijack_root_logger": False,
        "task_default_queue": QUEUE_CPU,
        "task_queues": [Queue(QUEUE_GPU), Queue(QUEUE_CPU)],
        "task_create_missing_queues": True,
        # Every worker also consumes its own queue (<node name>.dq2): a live job goes to
        # the one worker the scheduler found fast enough (worker/broker/publish.py).
        "worker_direct": True,
        "task_default_priority": 5,
        "worker_disable_rate_limits": True,
        "enable_utc": True,
    }


def create_app(settings: Settings, broker_url: str | None = None) -> Celery:
    """A Celery app for these settings; ``broker_url`` overrides (the embedded broker's)."""
    url = broker_url or (settings.broker_url.get_secret_value() if settings.broker_url else None)
    if not url:
        raise ConfigError(
            "no broker: set broker_url (or KAMADO_BROKER_URL), or use a one-box command "
            "(kamado encode, kamado demo) that starts the embedded broker"
        )
    app = Celery("kamado", set_as_current=False)
    app.conf.update(celery_config(settings, url))
    return app
