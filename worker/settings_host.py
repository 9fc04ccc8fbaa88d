"""The `[host]` config section: the KVM host agent and its passthrough VM."""

from __future__ import annotations

from worker.config_base import Section


class HostSettings(Section):
    """Settings of the host agent (filled in by the host agent's work)."""
