"""The scheduler's errors, under kamado's one hierarchy (worker/errors.py)."""

from __future__ import annotations

from pathlib import Path

from worker.errors import BadInputError, KamadoError


class RecordingError(BadInputError):
    """Raised when a recording named by a hook or `kamado enqueue` cannot be submitted.

    ``denied`` is True when it is there but this user may not read it (permissions).
    """

    def __init__(
        self, message: str, *, path: Path | str | None = None, denied: bool = False
    ) -> None:
        super().__init__(message)
        self.path = path
        self.denied = denied


class HookInputError(BadInputError):
    """Raised when a recorder hands a hook input it cannot use (missing or malformed)."""

    def __init__(self, message: str, *, recorder: str, field: str | None = None) -> None:
        super().__init__(message)
        self.recorder = recorder
        self.field = field


class UnknownJob(BadInputError):
    """Raised when a job id (or prefix) matches no job, or more than one."""

    def __init__(self, message: str, *, job: str) -> None:
        super().__init__(message)
        self.job = job


class SpoolError(KamadoError):
    """Raised when the spool directory cannot be written or read."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class SpoolAccessError(SpoolError):
    """Raised when this user may not use the spool (permissions, a read-only file system)."""

    exit_code = 2


class PresetFailed(KamadoError):
    """Raised when an EPGStation encode preset's job left no verified output at OUTPUT."""
