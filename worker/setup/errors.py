"""The errors `kamado setup` raises (under :class:`worker.errors.KamadoError`).

KamadoError
└── SetupError        a step cannot be done: a command failed, a file is in the way
"""

from __future__ import annotations

from pathlib import Path

from worker.errors import KamadoError


class SetupError(KamadoError):
    """Raised when a setup step cannot be done (a command failed, a file is in the way)."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path
