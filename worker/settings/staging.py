"""The `[staging]` config section: where sources come from and outputs go (local or SFTP)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from worker.settings.base import Section

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _absolute_posix(value: str, field: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError(f"{field} must be an absolute path, got {value!r}")
    return str(PurePosixPath(value)) if value else value


class LocalLocation(Section):
    """A directory on this machine, usually a shared mount of the recorder's disk."""

    kind: Literal["local"] = "local"
    path: Path = Field(description="where the directory is mounted on this machine")
    recorder_path: str = Field(
        default="",
        description="the same directory as the recorder names it; plain paths under it are "
        "mapped to `path` (path mapping)",
    )
    writable: bool = Field(default=True, description="outputs may be written here")

    @field_validator("recorder_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _absolute_posix(value, "recorder_path")

    @field_validator("path")
    @classmethod
    def _path_absolute(cls, value: Path) -> Path:
        value = value.expanduser()
        if not value.is_absolute():
            raise ValueError(f"path must be absolute, got {str(value)!r}")
        return value


class SftpLocation(Section):
    """A directory on another host (the recorder) reached over SFTP with strict host keys."""

    kind: Literal["sftp"]
    # A host name or an IP address: no user@, no spaces, no leading dash (ssh would read
    # those as a user or an option).
    host: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:\[\]][A-Za-z0-9_.:\[\]-]*$")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    key_file: Path = Field(description="private key (ed25519, ecdsa or rsa) for key auth")
    key_passphrase: SecretStr | None = Field(
        default=None, description="passphrase of key_file, if it has one"
    )
    known_hosts: Path = Field(
        description="known_hosts file holding the host's key; unknown or changed keys are refused"
    )
    root: str = Field(
        default="/",
        description="remote directory that sftp://<name>/<path> is relative to; "
        "sftp://user@host/<path> must stay under it",
    )
    recorder_path: str = Field(
        default="",
        description="plain recorder paths under this prefix are fetched from this location "
        "(relative to root) when no local location maps them",
    )
    writable: bool = Field(default=True, description="outputs may be written here")
    connect_timeout: float = Field(default=15.0, gt=0, description="seconds")
    io_timeout: float = Field(
        default=60.0, gt=0, description="seconds without an answer before the link is dropped"
    )

    @field_validator("root", "recorder_path")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return _absolute_posix(value, info.field_name or "path")

    @field_validator("key_file", "known_hosts")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


Location = Annotated[LocalLocation | SftpLocation, Field(discriminator="kind")]


class StagingSettings(Section):
    """How sources are pulled to this machine and outputs delivered."""

    scratch_dir: Path = Field(
        default=Path("~/.cache/kamado/scratch"),
        validate_default=True,
        description="pulled sources and streaming pipes; needs room for the largest recording",
    )
    min_free_mb: int = Field(
        default=1024,
        ge=0,
        description="space that must stay free on scratch and output locations after a transfer",
    )
    mode: Literal["pull", "stream"] = Field(
        default="pull",
        description="pull copies an SFTP source to scratch first (with sha256); stream feeds "
        "ffmpeg through a pipe while it downloads",
    )
    prefetch: bool = Field(
        default=True, description="pull the next job's source while the current one encodes"
    )
    retries: int = Field(
        default=3, ge=0, le=100, description="reconnects per transfer after a dropped link"
    )
    retry_delay: float = Field(default=2.0, ge=0, description="seconds, doubled per retry")
    window_mb: int = Field(
        default=64, ge=1, le=1024, description="SSH channel window; larger is faster on fast links"
    )
    max_requests: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="SFTP read requests in flight; writes keep at most this many and about "
        "1 MiB in flight",
    )
    locations: dict[str, Location] = Field(default_factory=dict)

    @field_validator("scratch_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("locations")
    @classmethod
    def _names(cls, value: dict[str, Location]) -> dict[str, Location]:
        for name in value:
            if not NAME_PATTERN.match(name):
                raise ValueError(
                    f"location name {name!r}: use letters, digits, '.', '_' or '-' "
                    "(it appears in sftp://<name>/... URIs)"
                )
        return value
