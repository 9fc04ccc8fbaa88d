"""Source and output URIs a Job carries, resolved against the configured locations.

Forms (the path part is taken verbatim: no percent-decoding, so any file name works):

- ``/abs/path``: a path as the recorder names it. If a location's ``recorder_path`` is a
  prefix, the path is mapped to that location (local mounts before SFTP, longest prefix
  first); otherwise it is used as a path on this machine.
- ``sftp://<location>/<path>``: ``<path>`` relative to that SFTP location's ``root``.
- ``sftp://[user@]host[:port]/<abs path>``: resolved to the configured SFTP location with
  that host, port (default 22) and user; the path must lie under its ``root``. Keys and
  host keys always come from the config, never from the URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from worker.settings.staging import LocalLocation, SftpLocation, StagingSettings
from worker.staging.errors import BadUriError

SFTP_SCHEME = "sftp://"
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Target:
    """A resolved URI: which location, and the absolute path there."""

    uri: str
    kind: Literal["local", "sftp"]
    path: str
    location: str = ""

    def describe(self) -> str:
        """A short human form: ``location:path`` or the local path."""
        return f"{self.location}:{self.path}" if self.location else self.path


def sftp_uri(location: str, path: str) -> str:
    """The URI of ``path`` (relative to the location's root) on a named SFTP location."""
    return f"{SFTP_SCHEME}{location}/{path.lstrip('/')}"


def resolve(settings: StagingSettings, uri: str) -> Target:
    """Resolve a source or output URI against the configured locations, or raise BadUriError."""
    if not uri:
        raise BadUriError("empty source/output URI")
    if "\0" in uri:
        raise BadUriError(f"URI {uri!r} contains a NUL byte", path=uri)
    if uri.startswith(SFTP_SCHEME):
        return _resolve_sftp(settings, uri)
    if SCHEME.match(uri):
        raise BadUriError(f"URI {uri!r}: unsupported scheme; use a path or sftp://", path=uri)
    if not uri.startswith("/"):
        raise BadUriError(f"path {uri!r} must be absolute", path=uri)
    return _resolve_plain(settings, uri)


def _safe_join(root: str, relative: str, uri: str, location: str) -> str:
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadUriError(
            f"URI {uri!r}: '..' is not allowed (paths stay under the location's root)",
            location=location,
            path=relative,
        )
    if not parts:
        raise BadUriError(f"URI {uri!r} names no file", location=location, path=relative)
    return str(PurePosixPath(root, *parts))


def _resolve_sftp(settings: StagingSettings, uri: str) -> Target:
    authority, slash, rest = uri[len(SFTP_SCHEME) :].partition("/")
    if not slash or not authority:
        raise BadUriError(f"URI {uri!r}: expected sftp://<location>/<path>", path=uri)
    named = settings.locations.get(authority)
    if named is not None and "@" not in authority:
        if not isinstance(named, SftpLocation):
            raise BadUriError(
                f"URI {uri!r}: location {authority!r} is local, not sftp; use a plain path",
                location=authority,
            )
        return Target(uri, "sftp", _safe_join(named.root, rest, uri, authority), authority)
    bare_name = named is None and "@" not in authority and ":" not in authority
    if bare_name and not any(
        isinstance(loc, SftpLocation) and loc.host == authority
        for loc in settings.locations.values()
    ):
        raise BadUriError(
            f"URI {uri!r}: {undefined_location(authority)}", location=authority, path=uri
        )
    user, host, port = _split_authority(authority, uri)
    for name, loc in settings.locations.items():
        if not isinstance(loc, SftpLocation) or loc.host != host or loc.port != port:
            continue
        if user and loc.user != user:
            continue
        relative = _under_root(loc.root, "/" + rest, uri, name)
        return Target(uri, "sftp", _safe_join(loc.root, relative, uri, name), name)
    raise BadUriError(
        f"URI {uri!r}: no [staging.locations] entry of kind sftp for "
        f"{(user + '@') if user else ''}{host}:{port}; add one (with its known_hosts) "
        "or use sftp://<location>/<path>",
        path=uri,
    )


def undefined_location(name: str) -> str:
    """What to do about a job that names a location this worker's config does not define."""
    return (
        f"this worker has no location {name!r}: define [staging.locations.{name}] on this "
        'worker (kind = "sftp", host, user, key_file, known_hosts, root; see '
        "deploy/staging.example.toml), then run `kamado locations check`"
    )


def _split_authority(authority: str, uri: str) -> tuple[str, str, int]:
    user, _, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    try:
        port = int(port_text) if port_text else 22
    except ValueError:
        raise BadUriError(f"URI {uri!r}: port {port_text!r} is not a number", path=uri) from None
    if not host:
        raise BadUriError(f"URI {uri!r}: no host", path=uri)
    return user, host, port


def _under_root(root: str, absolute: str, uri: str, location: str) -> str:
    path = PurePosixPath(absolute)
    if not path.is_relative_to(root):
        raise BadUriError(
            f"URI {uri!r}: {absolute!r} is outside root {root!r} of location {location!r}",
            location=location,
            path=absolute,
        )
    return str(path.relative_to(root))


def _resolve_plain(settings: StagingSettings, path: str) -> Target:
    matches: list[tuple[int, int, str]] = []
    for name, loc in settings.locations.items():
        prefix = loc.recorder_path
        if prefix and PurePosixPath(path).is_relative_to(prefix):
            matches.append((0 if isinstance(loc, LocalLocation) else 1, -len(prefix), name))
    if not matches:
        return Target(path, "local", path)
    name = min(matches)[2]
    loc = settings.locations[name]
    relative = str(PurePosixPath(path).relative_to(loc.recorder_path))
    if isinstance(loc, LocalLocation):
        mapped = loc.path.joinpath(relative) if relative != "." else loc.path
        return Target(path, "local", str(mapped), name)
    return Target(path, "sftp", _safe_join(loc.root, relative, path, name), name)
