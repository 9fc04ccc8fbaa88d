"""Errors of file staging: each names the location, the path and the reason.

``transient`` tells a caller (the Celery task) whether trying again later may succeed: a
dropped link may, a refused host key or a missing file will not.
"""

from __future__ import annotations

from worker.errors import StagingError


class LocationError(StagingError):
    """Raised when staging fails at a location; the base of every staging error below."""

    transient = False

    def __init__(self, message: str, *, location: str = "", path: str = "") -> None:
        super().__init__(message)
        self.location = location
        self.path = path


class BadUriError(LocationError):
    """Raised when a source or output URI is malformed or names no configured location."""

    exit_code = 2


class HostKeyError(LocationError):
    """Raised when an SFTP host's key is not in known_hosts or differs from it."""

    def __init__(
        self,
        message: str,
        *,
        location: str = "",
        path: str = "",
        fingerprint: str = "",
        changed: bool = False,
    ) -> None:
        super().__init__(message, location=location, path=path)
        self.fingerprint = fingerprint
        self.changed = changed


class AuthenticationError(LocationError):
    """Raised when the SFTP host refuses the key, or the key file cannot be read."""


class UnreachableError(LocationError):
    """Raised when the host cannot be reached or the link drops and retries run out."""

    transient = True


class RemoteNotFoundError(LocationError):
    """Raised when a source file or an output directory does not exist."""


class AccessDeniedError(LocationError):
    """Raised when the location refuses to read or write a path (permissions)."""


class NoSpaceError(LocationError):
    """Raised when scratch or an output location lacks room for a transfer."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        location: str = "",
        path: str = "",
        free: int | None = None,
        needed: int | None = None,
    ) -> None:
        super().__init__(message, location=location, path=path)
        self.free = free
        self.needed = needed


class OutputExistsError(LocationError):
    """Raised when a file kamado must not replace appeared at an output's final path."""


class TransferError(LocationError):
    """Raised when a transfer ends incomplete or the source changed while it was copied."""

    transient = True


class IntegrityError(TransferError):
    """Raised when a pushed output is not byte for byte the verified file (its size or its
    sha256 differ); it is never renamed into place. Pushing the same bytes again cannot
    help, so staging does not retry it; a new attempt (a new encode) may."""
