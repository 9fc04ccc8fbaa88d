"""The host agent's errors: every libvirt or sysfs failure a user can see is one of these."""

from __future__ import annotations

from worker.errors import KamadoError


class HostAgentError(KamadoError):
    """Raised when the host agent cannot do what was asked of the VM or the host."""

    def __init__(self, message: str, *, domain: str | None = None) -> None:
        super().__init__(message)
        self.domain = domain


class HypervisorUnavailable(HostAgentError):
    """Raised when libvirt cannot be reached, or the connection broke and must be reopened."""

    def __init__(self, message: str, *, uri: str, domain: str | None = None) -> None:
        super().__init__(message, domain=domain)
        self.uri = uri


class DomainNotFound(HostAgentError):
    """Raised when the VM is not defined in libvirt."""


class DomainDefinitionError(HostAgentError):
    """Raised when libvirt rejects the generated domain XML."""


class DomainOperationError(HostAgentError):
    """Raised when libvirt fails to start, stop or query the VM."""

    def __init__(self, message: str, *, domain: str | None = None, operation: str = "") -> None:
        super().__init__(message, domain=domain)
        self.operation = operation


class ShutdownTimeout(DomainOperationError):
    """Raised when the guest ignores a graceful shutdown and destroy was not allowed."""


class UnsupportedOperation(HostAgentError):
    """Raised when the libvirt driver cannot do this (the test driver has no guest agent)."""
