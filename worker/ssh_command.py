"""The OpenSSH client argv for an SFTP location, and what its stderr means.

Every option that could loosen checking is pinned on the command line and no config
file is read (``-F /dev/null``): strict host keys against the location's known_hosts
only (never updated), only the configured key, no agent, no password or keyboard
prompts, no forwarding, no connection sharing. The only remote command is the ``sftp``
subsystem: file names travel inside the SFTP protocol, never through a remote shell.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from typing import Literal

from worker.settings_staging import SftpLocation

# AES-GCM runs on AES-NI and needs no separate MAC pass; OpenSSH's default order puts
# chacha20-poly1305 first, which is slower where AES-NI exists.
FAST_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"

Failure = Literal["host key", "host key changed", "auth", "subsystem", "unreachable"]

_PATTERNS: tuple[tuple[Failure, re.Pattern[str]], ...] = (
    ("host key changed", re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|has changed and")),
    ("host key", re.compile(r"Host key verification failed|host key is known for|No .* host key")),
    ("auth", re.compile(r"Permission denied|Too many authentication failures|no mutual")),
    ("subsystem", re.compile(r"subsystem request failed")),
)


def ssh_binary() -> str | None:
    """The OpenSSH client on PATH, or None."""
    return shutil.which("ssh")


def sftp_argv(ssh: str, location: SftpLocation) -> list[str]:
    """The argv that opens the ``sftp`` subsystem on a location with strict checking."""
    alive = max(1, math.ceil(location.io_timeout / 3))  # three silent probes = io_timeout
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(location.known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "CheckHostIP": "no",
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "IdentityFile": str(location.key_file),
        "CertificateFile": "none",
        "PreferredAuthentications": "publickey",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "AddKeysToAgent": "no",
        "ControlMaster": "no",
        "ControlPath": "none",
        "ForwardAgent": "no",
        "ForwardX11": "no",
        "ClearAllForwardings": "yes",
        "PermitLocalCommand": "no",
        "Compression": "no",
        "Ciphers": FAST_CIPHERS,
        "ConnectTimeout": str(max(1, math.ceil(location.connect_timeout))),
        "ServerAliveInterval": str(alive),
        "ServerAliveCountMax": "3",
        "LogLevel": "ERROR",
        "User": location.user,
        "Port": str(location.port),
    }
    argv = [ssh, "-F", "/dev/null", "-T", "-x", "-a", "-s"]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    return [*argv, "--", location.host, "sftp"]


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong, judged from ssh's stderr, and ssh's own last words."""

    failure: Failure
    reason: str


def diagnose(stderr_tail: str, returncode: int | None) -> Diagnosis:
    """Classify a failed ssh from its stderr tail."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    reason = _reason(lines) or (
        f"ssh exited with {returncode}" if returncode is not None else "ssh stopped answering"
    )
    for failure, pattern in _PATTERNS:
        if pattern.search(stderr_tail):
            return Diagnosis(failure, reason)
    return Diagnosis("unreachable", reason)


def _reason(lines: list[str]) -> str:
    # The WARNING banner of a changed key is many lines; its last one says what happened.
    useful = [line for line in lines if not set(line) <= set("@")]
    return useful[-1] if useful else ""
