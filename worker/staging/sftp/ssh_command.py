"""The OpenSSH client argv for an SFTP location, and what its stderr means.

Every option that could loosen checking is pinned on the command line and no config
file is read (``-F /dev/null``): strict host keys against the location's known_hosts
only (never updated), only the configured key, no agent, no password or keyboard
prompts, no forwarding, no connection sharing. The only remote command is the ``sftp``
subsystem: file names travel inside the SFTP protocol, never through a remote shell.

A key with a passphrase is unlocked by ssh itself through ``SSH_ASKPASS`` with
``SSH_ASKPASS_REQUIRE=force`` (OpenSSH 8.4+): a two-line script that prints the
passphrase from ssh's environment, never from a file or the command line.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from worker.settings.staging import SftpLocation

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


ASKPASS_VARIABLE = "KAMADO_SSH_KEY_PASSPHRASE"  # the name of the variable, not a secret
_ASKPASS = "#!/bin/sh\nprintf '%s\\n' \"$KAMADO_SSH_KEY_PASSPHRASE\"\n"
_askpass_lock = threading.Lock()
_askpass_path: list[Path] = []


def askpass_program() -> Path:
    """An executable that prints the passphrase ssh asks for (made once per process)."""
    with _askpass_lock:
        if not _askpass_path or not _askpass_path[0].is_file():
            folder = Path(tempfile.mkdtemp(prefix="kamado-askpass-"))  # mode 0700
            script = folder / "askpass"
            script.write_text(_ASKPASS, encoding="ascii")
            script.chmod(0o700)
            _askpass_path[:] = [script]
        return _askpass_path[0]


def sftp_env(location: SftpLocation) -> dict[str, str]:
    """Environment for ssh: for a key with a passphrase, askpass forced and the secret."""
    if location.key_passphrase is None:
        return {}
    return {
        "SSH_ASKPASS": str(askpass_program()),
        "SSH_ASKPASS_REQUIRE": "force",
        ASKPASS_VARIABLE: location.key_passphrase.get_secret_value(),
    }


def ssh_binary() -> str | None:
    """The OpenSSH client on PATH, or None."""
    return shutil.which("ssh")


def sftp_argv(ssh: str, location: SftpLocation) -> list[str]:
    """The argv that opens the ``sftp`` subsystem on a location with strict checking."""
    alive = max(1, math.ceil(location.io_timeout / 3))  # three silent probes = io_timeout
    options = {
        # BatchMode would also refuse to ask for a key's passphrase; with a passphrase
        # every other prompt stays off through the options below.
        "BatchMode": "no" if location.key_passphrase is not None else "yes",
        "NumberOfPasswordPrompts": "1",
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
