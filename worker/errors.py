"""kamado's error hierarchy: every failure a user can see is one of these.

Third-party exceptions (subprocess, redis, celery, paramiko, libvirt) are converted into
these at the one adapter module that calls them, with ``raise ... from e``. The message
names the thing (file, field, job) and the reason.

Every role's errors, in one tree (defined here unless a module is named;
tests/unit/worker/test_error_tree.py keeps the drawing true)::

    KamadoError
    ├── ConfigError
    ├── BadInputError
    │   ├── RecordingError                  scheduler.errors
    │   ├── HookInputError                  scheduler.errors
    │   └── UnknownJob                      scheduler.errors
    ├── ProcessError
    │   └── ProcessTimeout
    ├── MediaError
    │   ├── SourceError
    │   ├── EncodeError                     .kind: EncodeErrorKind
    │   ├── VerifyError
    │   └── OutputError
    │       └── OutputRefused
    │           └── OutputConflict
    ├── StagingError
    │   └── LocationError                   worker.staging.errors
    │       ├── BadUriError                 worker.staging.errors
    │       ├── HostKeyError                worker.staging.errors
    │       ├── AuthenticationError         worker.staging.errors
    │       ├── UnreachableError            worker.staging.errors
    │       ├── RemoteNotFoundError         worker.staging.errors
    │       ├── AccessDeniedError           worker.staging.errors
    │       ├── NoSpaceError                worker.staging.errors
    │       ├── OutputExistsError           worker.staging.errors
    │       └── TransferError               worker.staging.errors
    │           └── IntegrityError          worker.staging.errors
    ├── BrokerError
    │   ├── BrokerAuthError
    │   └── EmbeddedBrokerError
    ├── BackendUnavailable
    ├── NothingToServe
    ├── JobCancelled
    ├── LeaseLost
    ├── JobFailed
    ├── AttemptCrashed
    ├── LiveStopped                         worker.live.follow
    ├── TourError                           worker.tour.acts
    ├── TourUnavailable                     worker.tour.demo
    ├── SetupError                          worker.setup.errors
    ├── PresetFailed                        scheduler.errors
    ├── EpgstationAway                      scheduler.epgstation.api
    ├── EpgstationRefused                   scheduler.epgstation.api
    ├── SpoolError                          scheduler.errors
    │   └── SpoolAccessError                scheduler.errors
    └── HostAgentError                      host_agent.errors
        ├── HypervisorUnavailable           host_agent.errors
        ├── DomainNotFound                  host_agent.errors
        ├── DomainDefinitionError           host_agent.errors
        ├── DomainOperationError            host_agent.errors
        │   └── ShutdownTimeout             host_agent.errors
        └── UnsupportedOperation            host_agent.errors
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

__all__ = [
    "HARDWARE_KINDS",
    "AttemptCrashed",
    "BackendUnavailable",
    "BadInputError",
    "BrokerAuthError",
    "BrokerError",
    "ConfigError",
    "EmbeddedBrokerError",
    "EncodeError",
    "EncodeErrorKind",
    "JobCancelled",
    "JobFailed",
    "KamadoError",
    "LeaseLost",
    "MediaError",
    "NothingToServe",
    "OutputConflict",
    "OutputError",
    "OutputRefused",
    "ProcessError",
    "ProcessTimeout",
    "SourceError",
    "StagingError",
    "VerifyError",
]


class KamadoError(Exception):
    """Raised for any failure kamado reports to a user; the base of all others."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(KamadoError):
    """Raised when the config file or a KAMADO_* variable is unreadable or invalid."""

    exit_code = 2

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class BadInputError(KamadoError):
    """Raised when a command-line argument or task payload is invalid."""

    exit_code = 2


class ProcessError(KamadoError):
    """Raised when an external program cannot be started or ends badly."""

    def __init__(
        self,
        message: str,
        *,
        argv: list[str] | None = None,
        returncode: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.argv = argv or []
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class ProcessTimeout(ProcessError):
    """Raised when an external program runs past its time limit and is killed."""


class MediaError(KamadoError):
    """Raised when a source or output file is not usable media."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path


class SourceError(MediaError):
    """Raised when a source recording is missing, empty, unreadable or not a video.

    The same source fails the same way on every attempt, so it is never retried.
    """


class EncodeErrorKind(StrEnum):
    """What an ffmpeg failure was, read from its stderr (worker/encode/stderr.py).

    The values are what the registry, the metrics and the notifications store, so an old
    record's string and a new member compare equal.
    """

    OPTION = "option"  # ffmpeg refused an option of the profile: permanent
    HARDWARE = "hardware"  # the GPU, its driver or the runtime is missing or failed
    DISK = "disk"  # no space or quota for the output: permanent until freed
    INPUT = "input"  # ffmpeg cannot read the source: permanent
    CRASH = "crash"  # ffmpeg was killed by a signal
    STALLED = "stalled"  # no progress for encode.stall_timeout (a hung GPU does that)
    ENCODE = "encode"  # any other failure


# The kinds that say the GPU itself is unwell: the probe stops proving a device after one,
# a reused probe is redone, and the guest agent counts them against its hardware.
HARDWARE_KINDS = frozenset(
    {EncodeErrorKind.HARDWARE, EncodeErrorKind.CRASH, EncodeErrorKind.STALLED}
)


class EncodeError(MediaError):
    """Raised when ffmpeg fails on a source it could read; ``kind`` says how."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        backend: str | None = None,
        returncode: int | None = None,
        stderr_tail: str = "",
        kind: EncodeErrorKind = EncodeErrorKind.ENCODE,
    ) -> None:
        super().__init__(message, path=path)
        self.backend = backend
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.kind = EncodeErrorKind(kind)


class VerifyError(MediaError):
    """Raised when an encoded output fails verification (streams, duration, decode)."""


class OutputError(MediaError):
    """Raised when the output cannot be written or moved into place (space, permissions)."""


class BackendUnavailable(KamadoError):
    """Raised when no backend a profile accepts is proven on this worker."""

    def __init__(self, message: str, *, accepted: list[str], available: list[str]) -> None:
        super().__init__(message)
        self.accepted = accepted
        self.available = available


class NothingToServe(KamadoError):
    """Raised when a worker has no queue it can serve here (no encoder backend proven).

    Exit 3, which the worker units' RestartPreventExitStatus names: restarting only
    probes the same missing GPU or driver again.
    """

    exit_code = 3


class JobCancelled(KamadoError):
    """Raised inside an attempt when its job was cancelled; ffmpeg is already killed."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


class LeaseLost(KamadoError):
    """Raised inside an attempt that no longer holds its job's lease; it must not commit."""

    def __init__(self, job_id: str, reason: str = "") -> None:
        super().__init__(
            f"job {job_id}: this attempt lost its lease{': ' + reason if reason else ''}"
        )
        self.job_id = job_id


class JobFailed(KamadoError):
    """Raised by the encode task when an attempt failed; carries only the message.

    Celery rebuilds task exceptions from their arguments on the client side, so the one
    exception that crosses the result backend takes a single string.
    """


class BrokerError(KamadoError):
    """Raised when the broker (Redis) cannot be reached or answers with an error."""


class BrokerAuthError(BrokerError):
    """Raised when the broker refuses kamado's credentials (WRONGPASS, NOAUTH): a config error."""

    exit_code = 2


class EmbeddedBrokerError(BrokerError):
    """Raised when the embedded Redis-compatible server cannot be started."""


class StagingError(KamadoError):
    """Raised when a source cannot be fetched or an output cannot be delivered."""


class OutputRefused(OutputError):
    """Raised when an output breaks the output contract: it is the source or a known
    recording, lies outside the places outputs may go, is not ``.mp4`` or its name is too
    long. The same job fails the same way every time, so it is never retried.
    """

    exit_code = 2


class OutputConflict(OutputRefused):
    """Raised when an output place is another job's, or holds a file kamado did not write,
    and ``encode.on_conflict = "refuse"``; the message names both sides.
    """


class AttemptCrashed(KamadoError):
    """Raised when an attempt ended on an exception kamado did not expect; names it."""
