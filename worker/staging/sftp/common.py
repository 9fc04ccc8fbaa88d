"""What both SFTP transports share: request sizes, host key names, a session's base.

The values that cross the Files interface (stat, space, progress) are in
:mod:`worker.staging.files`.
"""

from __future__ import annotations

import errno
from typing import NoReturn, Self

from worker.settings.staging import SftpLocation
from worker.staging.errors import (
    AccessDeniedError,
    LocationError,
    NoSpaceError,
    OutputExistsError,
    RemoteNotFoundError,
    TransferError,
)
from worker.staging.files import DiskSpace

DEFAULT_REQUEST = 32 * 1024  # every SFTP server accepts this much per read or write
MAX_REQUEST = 255 * 1024  # OpenSSH's limit (256 KiB message less headers)


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def shown_bytes(sent: bytes, limit: int = 200) -> str:
    """What a server sent instead of SFTP, as text: its first line(s), at most ``limit``."""
    text = sent.decode("utf-8", "replace").replace("\x00", "").strip()
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())[:limit]


def not_sftp_reason(user: str, sent: bytes) -> str:
    """Why an SSH login gave no SFTP session, from the first bytes the server sent, and the fix.

    With ``Subsystem sftp /usr/lib/openssh/sftp-server`` (Debian's default) sshd runs the
    server through the account's login shell; a nologin shell prints its refusal instead.
    ``internal-sftp`` runs inside sshd and needs no shell.
    """
    text = shown_bytes(sent)
    said = (
        f"the server sent {text!r} instead of an SFTP greeting"
        if text
        else ("the server closed the SFTP channel without a greeting")
    )
    return (
        f"{said}: the login shell of {user!r} ran in place of the SFTP server (a nologin "
        "shell does that with Debian's `Subsystem sftp /usr/lib/openssh/sftp-server`). On "
        f"the server add to /etc/ssh/sshd_config `Match User {user}` with "
        "`ForceCommand internal-sftp` under it (or set `Subsystem sftp internal-sftp`), "
        "then `systemctl reload ssh`"
    )


def clamp_request(size: int) -> int:
    """A request size a server announced, kept between the safe and OpenSSH's maximum."""
    return max(DEFAULT_REQUEST, min(MAX_REQUEST, size or DEFAULT_REQUEST))


class SessionBase:
    """What both SFTP transports (paramiko, OpenSSH) share: context use, space errors."""

    name: str
    location: SftpLocation

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session (each transport closes its own connection)."""
        raise NotImplementedError

    def disk_space(self, path: str) -> DiskSpace | None:
        """Free space where ``path`` lives (each transport asks its own way)."""
        raise NotImplementedError

    def raise_for_code(self, e: Exception, where: str, path: str, code: int | None) -> NoReturn:
        """A failure the server answered with an errno: not found, denied, or otherwise."""
        if code == errno.ENOENT:
            raise RemoteNotFoundError(
                f"{where}: no such file or directory", location=self.name, path=path
            ) from e
        if code == errno.EACCES:
            raise AccessDeniedError(
                f"{where}: permission denied; check the owner and mode on the host "
                f"for user {self.location.user!r}",
                location=self.name,
                path=path,
            ) from e
        raise TransferError(f"{where}: {e}", location=self.name, path=path) from e

    def exists_error(self, old: str, new: str) -> OutputExistsError:
        """The error of a no-replace rename that found a file at ``new``."""
        return OutputExistsError(
            f"location {self.name!r}: {new!r} appeared while the output was being delivered "
            f"and kamado does not replace it (the pushed file {old!r} is removed)",
            location=self.name,
            path=new,
        )

    def space_error(self, path: str, needed: int) -> NoSpaceError:
        """A NoSpaceError for ``path`` naming free and needed bytes."""
        try:
            space = self.disk_space(path)
        except LocationError:
            space = None
        free = space.free if space else None
        shown = f"{free} bytes free" if free is not None else "free space unknown"
        return NoSpaceError(
            f"location {self.name!r}: no space left on the remote disk for {path!r} "
            f"({shown}, {needed} needed); free space on {self.location.host}",
            location=self.name,
            path=path,
            free=free,
            needed=needed,
        )
