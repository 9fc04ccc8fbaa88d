"""A staged source: the local path ffmpeg reads, however its bytes got there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from worker.staging.errors import RemoteNotFoundError
from worker.staging.local import LocalFiles
from worker.staging.uri import Target


class Finisher(Protocol):
    """A background download a StagedSource waits for."""

    def finish(self, timeout: float | None = None) -> str: ...


@dataclass
class StagedSource:
    """A source ready for ffmpeg at ``path`` (a mount, a scratch copy, or a FIFO)."""

    uri: str
    path: Path
    size: int
    sha256: str | None = None
    copied: bool = False
    streaming: bool = False
    stream: Finisher | None = field(default=None, repr=False)

    def finish(self, timeout: float | None = None) -> None:
        """Wait for a streamed download to end; raise its StagingError if it failed."""
        if self.stream is not None:
            self.sha256 = self.stream.finish(timeout)


def local_source(target: Target) -> StagedSource:
    """A local (or mounted) source used where it is; a directory is refused."""
    st = LocalFiles(target.location).stat(target.path)
    if st.is_dir:
        raise RemoteNotFoundError(
            f"source {target.path!r} is a directory, not a recording", path=target.path
        )
    return StagedSource(target.uri, Path(target.path), st.size)
