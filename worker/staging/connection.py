"""Opening a location: local or SFTP, which SSH transport, a link opened early, retries."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Self, TypeVar

from worker.settings.staging import LocalLocation, SftpLocation, StagingSettings
from worker.staging.errors import BadUriError, IntegrityError, LocationError, NoSpaceError
from worker.staging.files import Files
from worker.staging.local import LocalFiles
from worker.staging.sftp.openssh_files import Opening, OpenSshSession
from worker.staging.sftp.ssh_command import ssh_binary
from worker.staging.uri import undefined_location

T = TypeVar("T")
log = logging.getLogger("kamado.staging")
# ssh reads these paths as config values: whitespace splits them, % and ${ are expanded.
_SSH_UNSAFE_PATH = re.compile(r"[\s\"'\\%$#]")
_told: set[tuple[str, str]] = set()


def connect(settings: StagingSettings, name: str) -> Files:
    """Open the location ``name`` ("" is this machine): local, OpenSSH, or paramiko when
    OpenSSH cannot carry it (close it after)."""
    if not name:
        return LocalFiles()
    location = settings.locations.get(name)
    if location is None:
        raise BadUriError(undefined_location(name), location=name)
    if isinstance(location, LocalLocation):
        return LocalFiles(name)
    ssh = ssh_binary()
    why_not = openssh_unusable(location, ssh)
    if ssh is None or why_not:
        if (name, why_not) not in _told:  # once per location and reason, not per transfer
            _told.add((name, why_not))
            log.warning("location %r uses the slower paramiko transport: %s", name, why_not)
        from worker.staging.sftp.paramiko_files import SftpSession  # paramiko: only when used

        return SftpSession.connect(
            name, location, window_mb=settings.window_mb, max_requests=settings.max_requests
        )
    return OpenSshSession.connect(name, location, ssh=ssh, max_requests=settings.max_requests)


class Link:
    """A connection to a location opened ahead of use: ssh handshakes while the caller works.

    Only the OpenSSH transport opens early (in its own process, no thread here); for any
    other location, or when the early start fails, ``take`` returns None and the caller
    connects as usual, which reports the failure. ``close`` stops a link nobody took.
    """

    def __init__(self, settings: StagingSettings, name: str) -> None:
        self._opening: Opening | None = None
        location = settings.locations.get(name)
        ssh = ssh_binary()
        if isinstance(location, SftpLocation) and ssh and not openssh_unusable(location, ssh):
            try:
                self._opening = OpenSshSession.begin(
                    name, location, ssh=ssh, max_requests=settings.max_requests
                )
            except LocationError as e:
                log.debug("location %r: no early connection: %s", name, e)

    def take(self) -> Files | None:
        """The session, once its handshake is done; None if there is none to give."""
        opening, self._opening = self._opening, None
        if opening is None:
            return None
        try:
            return opening.finish()
        except LocationError as e:  # the link died while the caller worked: connect afresh
            log.info("location %r: early connection failed (%s); connecting again", opening.name, e)
            return None

    def close(self) -> None:
        """Stop the connection if nobody took it."""
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def openssh_unusable(location: SftpLocation, ssh: str | None) -> str:
    """Why OpenSSH's client cannot carry this location (empty when it can)."""
    if ssh is None:
        return "no OpenSSH client (ssh) is installed"
    for setting, path in (("key_file", location.key_file), ("known_hosts", location.known_hosts)):
        if _SSH_UNSAFE_PATH.search(str(path)):
            return f"{setting} path {str(path)!r} holds characters ssh would expand or split"
    return ""


def with_retries(settings: StagingSettings, attempt: Callable[[int], T]) -> T:
    """Run ``attempt(n)`` until it succeeds or a non-transient error or the last retry."""
    for n in range(settings.retries + 1):
        try:
            return attempt(n)
        except LocationError as e:
            if not e.transient or isinstance(e, NoSpaceError | IntegrityError):
                raise
            if n == settings.retries:
                e.message += f" (gave up after {n + 1} attempts)"
                raise
            time.sleep(settings.retry_delay * 2**n)
    raise AssertionError("unreachable")  # pragma: no cover
