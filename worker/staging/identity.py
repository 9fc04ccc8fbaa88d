"""Which file an SFTP path really is: the server's realpath and stat, not the spelling.

Two spellings of one place (``sftp://rec/show.mp4``, ``sftp://rec/link/show.mp4`` through a
symlinked directory, ``/srv/rec/x/../show.mp4`` mapped by ``recorder_path``, or another
location on the same host and port) have one key. :class:`RemoteView` answers the output
contract's questions (worker/outputs/view.py) for paths on one SFTP server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from worker.settings.staging import SftpLocation, StagingSettings
from worker.staging.connection import connect
from worker.staging.errors import BadUriError, RemoteNotFoundError
from worker.staging.files import Files, RemoteStat
from worker.staging.uri import Target, resolve


@dataclass(frozen=True)
class RemoteFile:
    """What the server says a path is: its real path and, when something is there, its stat."""

    location: str
    server: str  # host:port: locations on one server share one file system
    real_path: str
    stat: RemoteStat | None

    @property
    def key(self) -> str:
        """The identity of the place: equal for every spelling of it on that server."""
        return f"sftp:{self.server}:{self.real_path}"

    @property
    def exists(self) -> bool:
        """True when a file (or directory) is there."""
        return self.stat is not None

    @property
    def fingerprint(self) -> str | None:
        """Size and mtime of the file there (what the contract compares), or None."""
        return None if self.stat is None else f"{self.stat.size}:{self.stat.mtime}"


def server_of(settings: StagingSettings, location: str) -> str:
    """The ``host:port`` of an SFTP location."""
    found = settings.locations.get(location)
    if not isinstance(found, SftpLocation):
        raise BadUriError(f"location {location!r} is not an SFTP location", location=location)
    return f"{found.host}:{found.port}"


def identify(settings: StagingSettings, files: Files, target: Target) -> RemoteFile:
    """The real path and stat of an SFTP target, asked on ``files`` (open on its server).

    A symlink as the last part is followed, as writing through it would; a missing last
    part is fine (an output not written yet); a missing directory is RemoteNotFoundError.
    """
    if target.kind != "sftp":
        raise BadUriError(f"{target.describe()!r} is not on an SFTP location", path=target.path)
    real = files.realpath(target.path)
    try:
        st: RemoteStat | None = files.stat(real)
    except RemoteNotFoundError:
        st = None
        if files.lexists(target.path):  # a dangling symlink: writing would create its target
            st = RemoteStat(size=-1, mtime=0, is_dir=False)
    return RemoteFile(target.location, server_of(settings, target.location), real, st)


def remote_identity(
    settings: StagingSettings, uri: str, *, files: Files | None = None
) -> RemoteFile:
    """The identity of an SFTP URI (or a path mapped to an SFTP location), connecting if needed."""
    target = resolve(settings, uri)
    if target.kind != "sftp":
        raise BadUriError(f"{uri!r} is not on an SFTP location", path=uri)
    if files is not None:
        return identify(settings, files, target)
    with_files = connect(settings, target.location)
    try:
        return identify(settings, with_files, target)
    finally:
        with_files.close()


class RemoteView:
    """The output contract's view of one SFTP server, through an open session.

    Paths are the job's spellings (``sftp://`` URIs or recorder paths mapped to a location
    on this server); ``sees`` says whether a path is on this server at all.
    """

    def __init__(self, settings: StagingSettings, files: Files, location: str) -> None:
        self.settings = settings
        self.files = files
        self.location = location
        self.server = server_of(settings, location)
        self._seen: dict[str, RemoteFile] = {}

    def sees(self, path: str) -> bool:
        """True when ``path`` names a place on this view's server."""
        try:
            target = resolve(self.settings, path)
        except BadUriError:
            return False
        return target.kind == "sftp" and server_of(self.settings, target.location) == self.server

    def file(self, path: str) -> RemoteFile:
        """What the server says ``path`` is (asked once per path)."""
        if path not in self._seen:
            target = resolve(self.settings, path)
            if not self.sees(path):
                raise BadUriError(
                    f"{path!r} is not on the server of location {self.location!r}", path=path
                )
            self._seen[path] = identify(self.settings, self.files, target)
        return self._seen[path]

    def key(self, path: str) -> str:
        """The identity of the place ``path`` names (``sftp:<host:port>:<real path>``)."""
        return self.file(path).key

    def existing(self, path: str) -> str | None:
        """Size and mtime of the file at ``path``, or None when nothing is there."""
        return self.file(path).fingerprint

    def forget(self, path: str) -> None:
        """Ask the server again next time (after kamado wrote ``path``)."""
        self._seen.pop(path, None)


def parent_of(path: str) -> str:
    """The directory part of a remote path."""
    return str(PurePosixPath(path).parent)
