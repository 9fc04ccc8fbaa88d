"""The `[staging]` config section: where sources come from and outputs go (local or SFTP)."""

from __future__ import annotations

from worker.config_base import Section


class StagingSettings(Section):
    """Settings of file staging (filled in by the staging work)."""
