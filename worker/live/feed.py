"""What a live attempt brings to the encode pipeline: the head probe, the FIFO, the feed.

:func:`live_input` prepares, in a scratch directory of its own, the recording's first
bytes (probed for its streams and aspect, as an ordinary job probes the whole file), a
FIFO ffmpeg reads, and the :class:`Follower` that fills it. After ffmpeg ended,
:meth:`LiveInput.final_source` is the complete recording the output is verified against:
the file itself on this machine, or the copy the feed wrote alongside for an SFTP one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from worker.live.follow import Follower, PhaseReader, Position, read_head
from worker.settings.model import Settings
from worker.staging.uri import Target

__all__ = ["LiveFeed", "LiveInput", "live_input"]


@dataclass
class LiveFeed:
    """A live attempt's link to its job: the phase the finish hook moves, the time it gives
    up waiting for that hook, and where its lag behind the recording is reported."""

    phase: PhaseReader
    deadline: float | None = None
    report: Callable[[Position], None] = lambda _p: None


@dataclass
class LiveInput:
    """The prepared live input of one attempt."""

    target: Target
    head: Path
    fifo: Path
    follower: Follower
    feed: LiveFeed
    report_every: float = 2.0
    _reported: float = 0.0

    def check(self) -> None:
        """Raise why the feed stopped early (ffmpeg is then stopped); report the lag."""
        error = self.follower.failed()
        if error is not None:
            raise error
        if time.monotonic() - self._reported >= self.report_every:
            self._reported = time.monotonic()
            self.feed.report(self.follower.position)

    def finish(self) -> int:
        """The feed's end (the recording's final size), or why it stopped."""
        size = self.follower.finish()
        self.feed.report(self.follower.position)
        return size

    def final_source(self) -> Path:
        """The complete recording for verification (after :meth:`finish`)."""
        if self.target.kind == "local":
            return Path(self.target.path)
        assert self.follower.copy is not None
        return self.follower.copy


@contextmanager
def live_input(
    settings: Settings, target: Target, feed: LiveFeed, name: str
) -> Iterator[LiveInput]:
    """Scratch space, the head and the running feed for one live attempt (all removed
    after); ``name`` makes the scratch directory the attempt's own."""
    scratch = settings.staging.scratch_dir / f"live-{name}"
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True, mode=0o700)
    cancel = threading.Event()
    follower: Follower | None = None
    try:
        head = scratch / "head.ts"
        read_head(settings.staging, settings.live, target, head, feed.phase, cancel)
        fifo = scratch / "feed.fifo"
        os.mkfifo(fifo, 0o600)
        copy = None if target.kind == "local" else scratch / "recording.ts"
        follower = Follower(
            settings.staging,
            settings.live,
            target,
            fifo,
            phase=feed.phase,
            deadline=feed.deadline,
            copy=copy,
        ).start()
        yield LiveInput(target, head, fifo, follower, feed)
    finally:
        cancel.set()
        if follower is not None:
            follower.stop()
        shutil.rmtree(scratch, ignore_errors=True)
