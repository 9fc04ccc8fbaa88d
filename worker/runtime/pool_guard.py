"""A kamado worker refuses remote pool resizing (Flower's Grow, Shrink and Autoscale).

Each pool process runs one encode; on a worker with one iGPU a second process would run a
second hardware encode on the same GPU (or fail it), and a smaller pool strands the
encode it was running. Flower can only hide those buttons together with every other
control (``flower.read_only``), so the worker answers them itself: Celery looks remote
control commands up by name in one table, and kamado replaces these three entries with
a refusal that names the setting to change instead. Pool restarts stay off by Celery's
default (``worker_pool_restarts``).
"""

from __future__ import annotations

from typing import Any

from celery.worker.control import control_command

REFUSAL = (
    "kamado: the pool size is fixed at worker.concurrency (one encode per process, one per "
    "iGPU); change it in the worker's config and restart the worker"
)
REFUSED_COMMANDS = ("pool_grow", "pool_shrink", "autoscale")


def _refuse(state: Any, *_args: Any, **_kwargs: Any) -> dict[str, str]:
    return {"error": REFUSAL}  # Celery's own nok(): Flower shows it as the reason


def refuse_pool_resize() -> None:
    """Make this process's Celery worker refuse pool_grow, pool_shrink and autoscale."""
    for name in REFUSED_COMMANDS:
        control_command(name=name, args=[("n", int)], signature="[N=1]")(_refuse)
