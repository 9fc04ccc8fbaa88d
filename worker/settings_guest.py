"""The `[guest]` config section: the guest agent inside the passthrough VM."""

from __future__ import annotations

from worker.config_base import Section


class GuestSettings(Section):
    """Settings of the guest agent (filled in by the guest agent's work)."""
