"""The `[flower]`, `[metrics]` and `[notify]` config sections: what admins watch."""

from __future__ import annotations

from worker.config_base import Section


class FlowerSettings(Section):
    """Settings of `kamado flower` (filled in by the admin work)."""


class MetricsSettings(Section):
    """Settings of kamado's Prometheus endpoint (filled in by the admin work)."""


class NotifySettings(Section):
    """Settings of failure/success webhooks (filled in by the admin work)."""
