"""Checks of every configured location: reachable, host key, key, read, write, free space."""

from __future__ import annotations

import io
import secrets
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from worker.settings.staging import LocalLocation, SftpLocation, StagingSettings
from worker.staging.connection import connect
from worker.staging.errors import (
    AuthenticationError,
    HostKeyError,
    LocationError,
    UnreachableError,
)
from worker.staging.files import Files, TransferProgress
from worker.staging.local import LocalFiles
from worker.staging.scratch import MIB

FIXES = {
    "reachable": "check host, port and that sshd runs there (ssh -p PORT USER@HOST)",
    "host key": "verify the fingerprint with the host's admin, then fix known_hosts",
    "auth": "put key_file's .pub into the user's ~/.ssh/authorized_keys on the host",
    "read": "check the directory exists and the user may list it",
    "write": "give the user write permission there, or set writable = false",
    "space": "free space there or lower staging.min_free_mb",
}


@dataclass(frozen=True)
class CheckResult:
    """One check of one location, with what to do when it failed."""

    location: str
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return asdict(self)


def _fail(name: str, check: str, error: Exception | str) -> CheckResult:
    return CheckResult(name, check, False, str(error), FIXES.get(check, ""))


def check_all(settings: StagingSettings) -> list[CheckResult]:
    """Check scratch and every configured location, in config order."""
    results = check_scratch(settings)
    for name in settings.locations:
        results.extend(check_location(settings, name))
    return results


def check_scratch(settings: StagingSettings) -> list[CheckResult]:
    """Scratch must exist (or be creatable), be writable and have min_free_mb free."""
    scratch = settings.scratch_dir
    files = LocalFiles("scratch")
    try:
        with files.errors("create", str(scratch)):
            scratch.mkdir(parents=True, exist_ok=True)
    except LocationError as e:
        return [_fail("scratch", "write", e)]
    return [
        CheckResult("scratch", "reachable", True, str(scratch)),
        *_read_write_space(settings, "scratch", files, str(scratch), writable=True),
    ]


def check_location(settings: StagingSettings, name: str) -> list[CheckResult]:
    """Every check of one location; later checks are skipped once one fails."""
    location = settings.locations[name]
    if isinstance(location, LocalLocation):
        root = str(location.path)
        if not location.path.is_dir():
            return [_fail(name, "reachable", f"{root!r} is not a directory (not mounted?)")]
        results = [CheckResult(name, "reachable", True, f"local {root}")]
        return results + _read_write_space(
            settings, name, LocalFiles(name), root, writable=location.writable
        )
    return _check_sftp(settings, name, location)


def _check_sftp(settings: StagingSettings, name: str, location: SftpLocation) -> list[CheckResult]:
    where = f"{location.user}@{location.host}:{location.port}"
    try:
        files = connect(settings, name)
    except UnreachableError as e:
        return [_fail(name, "reachable", e)]
    except HostKeyError as e:
        return [CheckResult(name, "reachable", True, where), _fail(name, "host key", e)]
    except AuthenticationError as e:
        return [
            CheckResult(name, "reachable", True, where),
            CheckResult(name, "host key", True, f"matches {location.known_hosts}"),
            _fail(name, "auth", e),
        ]
    try:
        return [
            CheckResult(name, "reachable", True, where),
            CheckResult(name, "host key", True, f"matches {location.known_hosts}"),
            CheckResult(name, "auth", True, f"key {location.key_file}"),
            *_read_write_space(settings, name, files, location.root, writable=location.writable),
        ]
    finally:
        files.close()


def _read_write_space(
    settings: StagingSettings, name: str, files: Files, root: str, *, writable: bool
) -> list[CheckResult]:
    try:
        entries = files.listdir(root)
    except LocationError as e:
        return [_fail(name, "read", e)]
    results = [CheckResult(name, "read", True, f"{root} lists {len(entries)} entries")]
    if writable:
        probe = str(PurePosixPath(root, f".kamado-check-{secrets.token_hex(6)}"))
        payload = b"kamado locations check\n"
        try:
            files.write_from(
                io.BytesIO(payload), probe, TransferProgress(), offset=0, size=len(payload)
            )
            files.remove(probe)
            results.append(CheckResult(name, "write", True, "wrote and removed a test file"))
        except LocationError as e:
            results.append(_fail(name, "write", e))
    else:
        results.append(CheckResult(name, "write", True, "skipped (writable = false)"))
    try:
        space = files.disk_space(root)
    except LocationError as e:
        return [*results, _fail(name, "space", e)]
    if space is None:
        return [*results, CheckResult(name, "space", True, "unknown (server lacks statvfs)")]
    want = settings.min_free_mb * MIB
    detail = f"{space.free // MIB} MiB free of {space.total // MIB} MiB"
    if space.free < want:
        return [*results, _fail(name, "space", f"{detail}; min_free_mb is {settings.min_free_mb}")]
    return [*results, CheckResult(name, "space", True, detail)]
