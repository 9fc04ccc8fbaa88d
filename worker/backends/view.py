"""Every backend a worker has, proven or refused with ffmpeg's reason, in one shape.

The probe's report (worker/backends/capabilities.py, guest_agent/probe.py) becomes the heartbeat's
problems (what `kamado workers` reads) and a config entry the worker answers Celery's
``inspect conf`` with, which Flower's worker page shows in its Config tab.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from worker.broker.heartbeat import BackendProblem

__all__ = ["CONF_KEY", "backend_lines", "refused_word"]

# The app.conf key Flower's worker page lists (Config tab) with every backend's outcome.
CONF_KEY = "kamado_backend_probe"


class HasBackends(Protocol):
    """A probe report: each backend's result with status, kind and reason."""

    @property
    def backends(self) -> Mapping[Any, Any]:
        """Backend → result."""


def problems_of(report: HasBackends) -> list[BackendProblem]:
    """Every backend the probe did not prove, with ffmpeg's reason and its kind."""
    return [
        BackendProblem(
            backend=str(getattr(backend, "value", backend)),
            status=str(getattr(result.status, "value", result.status)),
            kind=str(result.kind or ""),
            reason=str(result.reason or ""),
        )
        for backend, result in report.backends.items()
        if str(getattr(result.status, "value", result.status)) != "proven"
    ]


def refused_word(status: str) -> str:
    """``refused`` for a backend that failed its test encode; absent/suspended as they are."""
    return "refused" if status == "failed" else status


def backend_lines(
    usable: Mapping[str, float | None], problems: list[BackendProblem], verb: str = "proven"
) -> list[str]:
    """One line per backend: ``vaapi proven (120 fps)``, ``qsv refused (hardware): …``.

    ``verb`` says how the usable ones were chosen: proven by the probe, or configured.
    """
    lines = [
        f"{name} {verb}" + (f" ({fps:.0f} fps)" if fps else "") for name, fps in usable.items()
    ]
    for problem in problems:
        kind = f" ({problem.kind})" if problem.kind else ""
        reason = f": {problem.reason}" if problem.reason else ""
        lines.append(f"{problem.backend} {refused_word(problem.status)}{kind}{reason}")
    return lines
