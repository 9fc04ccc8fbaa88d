"""Host keys and key files with paramiko: checks before connecting, and refusals explained.

Both transports run :func:`preflight` first, so a missing key file, an encrypted key
without its passphrase or a missing known_hosts file give the same clear error. When
OpenSSH refuses a host key, :func:`explain_host_key` looks at the key the host offers
and raises the error that names its fingerprint and the fix. With
:mod:`worker.staging.sftp.paramiko_files`, the only modules that import paramiko.
"""

from __future__ import annotations

import base64
import hashlib
import socket

import paramiko

from worker.settings.staging import SftpLocation
from worker.staging.errors import AuthenticationError, HostKeyError
from worker.staging.sftp.common import known_hosts_name

# AES-GCM needs no separate MAC pass and runs on AES-NI: the fastest paramiko offers.
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
RSA_TYPES = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load_key(name: str, location: SftpLocation) -> paramiko.PKey:
    where = f"location {name!r}: key_file {str(location.key_file)!r}"
    # PKey.from_path hands the passphrase to cryptography, which takes bytes only (the
    # stubs say str, and a str fails at run time).
    phrase = location.key_passphrase.get_secret_value() if location.key_passphrase else None
    secret = phrase.encode() if phrase is not None else None
    try:
        return paramiko.PKey.from_path(location.key_file, secret)  # type: ignore[arg-type]
    except paramiko.PasswordRequiredException as e:
        raise AuthenticationError(
            f"{where} is encrypted; set key_passphrase or use a key without one",
            location=name,
        ) from e
    except FileNotFoundError as e:
        raise AuthenticationError(
            f"{where} not found; create it with ssh-keygen -t ed25519 -f {location.key_file}",
            location=name,
        ) from e
    except (OSError, paramiko.SSHException, ValueError) as e:
        raise AuthenticationError(f"{where} is unreadable: {e}", location=name) from e


def load_known_hosts(name: str, location: SftpLocation) -> dict[str, paramiko.PKey]:
    hosts = paramiko.HostKeys()
    try:
        hosts.load(str(location.known_hosts))
    except FileNotFoundError as e:
        raise HostKeyError(
            f"location {name!r}: known_hosts file {str(location.known_hosts)!r} not found; "
            f"create it with ssh-keyscan -p {location.port} {location.host} after checking "
            "the fingerprint with the host",
            location=name,
        ) from e
    except (OSError, paramiko.SSHException) as e:
        raise HostKeyError(
            f"location {name!r}: known_hosts {str(location.known_hosts)!r} unreadable: {e}",
            location=name,
        ) from e
    entry = hosts.lookup(known_hosts_name(location.host, location.port))
    return dict(entry) if entry else {}


def prefer(transport: paramiko.Transport, known: dict[str, paramiko.PKey]) -> None:
    """Put fast ciphers first and offer the host-key types known_hosts holds first."""
    options = transport.get_security_options()
    ciphers = list(options.ciphers)
    options.ciphers = [c for c in FAST_CIPHERS if c in ciphers] + [
        c for c in ciphers if c not in FAST_CIPHERS
    ]
    wanted: list[str] = []
    for key_type in known:
        wanted.extend(RSA_TYPES if key_type == "ssh-rsa" else (key_type,))
    if wanted:
        types = list(options.key_types)
        options.key_types = [t for t in wanted if t in types] + [
            t for t in types if t not in wanted
        ]


def check_host_key(
    name: str, location: SftpLocation, key: paramiko.PKey, known: dict[str, paramiko.PKey]
) -> None:
    shown = f"{key.get_name()} {fingerprint(key)}"
    host = known_hosts_name(location.host, location.port)
    if not known:
        raise HostKeyError(
            f"location {name!r}: host key of {host} ({shown}) is not in "
            f"{str(location.known_hosts)!r}; refusing to connect. Check the fingerprint with "
            f"the host's admin, then add it: ssh-keyscan -p {location.port} {location.host} "
            f">> {location.known_hosts}",
            location=name,
            fingerprint=fingerprint(key),
        )
    expected = known.get(key.get_name())
    if expected is None or expected.asbytes() != key.asbytes():
        raise HostKeyError(
            f"location {name!r}: host key of {host} CHANGED (now {shown}); refusing to "
            "connect (possible man-in-the-middle). If the host was reinstalled, confirm the "
            f"new fingerprint, then: ssh-keygen -R '{host}' -f {location.known_hosts} and "
            "add the new key",
            location=name,
            fingerprint=fingerprint(key),
            changed=True,
        )


def preflight(name: str, location: SftpLocation) -> paramiko.PKey:
    """Load the key and check known_hosts exists, raising the errors users act on."""
    key = load_key(name, location)
    load_known_hosts(name, location)
    return key


def explain_host_key(name: str, location: SftpLocation) -> None:
    """Raise the HostKeyError naming the host's fingerprint, if paramiko sees the problem too.

    Returns quietly when it cannot tell (the host is gone, or the key looks fine to it).
    """
    known = load_known_hosts(name, location)
    try:
        sock = socket.create_connection(
            (location.host, location.port), timeout=location.connect_timeout
        )
    except OSError:
        return
    transport = paramiko.Transport(sock)
    try:
        prefer(transport, known)
        transport.start_client(timeout=location.connect_timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError):
        return
    finally:
        transport.close()
    check_host_key(name, location, key, known)
