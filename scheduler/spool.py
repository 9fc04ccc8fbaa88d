"""The durable spool: submissions that wait on local disk while the broker is away.

One file per submission, written to a temporary name, fsync'd, renamed into place and
the directory fsync'd, so a submission is either wholly there or not at all, even across
a power cut. Names start with a nanosecond timestamp, so sorting them is submission
order. A drain takes ``.drain.lock`` (one drainer at a time); the scheduler service
holds ``.service.lock`` for its life, which tells a hook that the service will deliver.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from scheduler.errors import SpoolError
from scheduler.submission import Submission
from worker.settings import Settings

SUFFIX = ".json"
BAD_DIR = "bad"


def spool_dir(settings: Settings) -> Path:
    """The spool directory: ``scheduler.spool_dir``, else ``<state_dir>/spool``."""
    return settings.scheduler.spool_dir or settings.state_dir / "spool"


@dataclass(frozen=True)
class Entry:
    """One spooled file: its submission, or why it cannot be read."""

    path: Path
    submission: Submission | None
    problem: str = ""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Submissions on local disk, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _ensure(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise SpoolError(
                f"spool {self.directory}: cannot create it ({e.strerror or e})",
                path=self.directory,
            ) from e

    def put(self, submission: Submission) -> Path:
        """Write one submission durably; returns its file."""
        self._ensure()
        name = f"{time.time_ns():020d}-{submission.job.id}{SUFFIX}"
        final = self.directory / name
        temp = self.directory / f".tmp-{secrets.token_hex(6)}"
        data = submission.model_dump_json().encode()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            temp.rename(final)
            _fsync_dir(self.directory)
        except OSError as e:
            temp.unlink(missing_ok=True)
            raise SpoolError(
                f"spool {self.directory}: cannot write a submission ({e.strerror or e})",
                path=self.directory,
            ) from e
        return final

    def entries(self) -> list[Entry]:
        """Every spooled submission, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                found.append(Entry(path, Submission.model_validate_json(path.read_bytes())))
            except FileNotFoundError:
                continue  # another drainer took it
            except (OSError, ValidationError) as e:
                found.append(Entry(path, None, str(e).splitlines()[0]))
        return found

    def remove(self, entry: Entry) -> None:
        """Delete a delivered entry (durably)."""
        entry.path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def quarantine(self, entry: Entry, reason: str) -> Path:
        """Move an entry that cannot be delivered to ``bad/`` (with a note) so it blocks none."""
        bad = self.directory / BAD_DIR
        bad.mkdir(exist_ok=True, mode=0o700)
        target = bad / entry.path.name
        entry.path.rename(target)
        target.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")
        _fsync_dir(self.directory)
        return target

    @contextlib.contextmanager
    def _lock(self, name: str, *, blocking: bool) -> Iterator[bool]:
        self._ensure()
        fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def drain_lock(self, *, blocking: bool = False) -> contextlib.AbstractContextManager[bool]:
        """Hold the drain lock; yields False when another process is draining."""
        return self._lock(".drain.lock", blocking=blocking)

    def service_lock(self) -> contextlib.AbstractContextManager[bool]:
        """Held by `kamado scheduler run` for its whole life."""
        return self._lock(".service.lock", blocking=False)

    def service_running(self) -> bool:
        """True while a scheduler service on this machine holds the service lock."""
        if not (self.directory / ".service.lock").exists():
            return False
        with self._lock(".service.lock", blocking=False) as got:
            return not got
