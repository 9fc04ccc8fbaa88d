"""The `[scheduler]` config section: submission, recorder hooks, spool, routing."""

from __future__ import annotations

from worker.config_base import Section


class SchedulerSettings(Section):
    """Settings of the scheduler role (filled in by the scheduler's work)."""
