"""`kamado doctor`: findings about this box's config, permissions and reachability, with fixes."""

from __future__ import annotations

from worker.doctor.findings import Context, Finding, Severity

__all__ = ["Context", "Finding", "Severity"]
