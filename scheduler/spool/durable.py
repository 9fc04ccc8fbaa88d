"""The durable spool: submissions and hook requests that wait on local disk for delivery.

A recorder hook spools a :class:`HookRequest` (its validated input) and returns; `kamado
enqueue`'s and the waiting hook's fallbacks spool a complete :class:`Submission`. One
file per entry, written durably (:mod:`scheduler.spool.store`), delivered oldest first.
A drain takes ``.drain.lock`` (one drainer at a time); the scheduler service holds
``.service.lock`` for its life, which tells a hook that the service will deliver.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from scheduler.recorder_input import REQUEST_KIND, HookRequest
from scheduler.spool import access as spool_access
from scheduler.spool import store as spool_store
from scheduler.submission import Submission

SUFFIX = spool_store.SUFFIX
BAD_DIR = "bad"


@dataclass(frozen=True)
class Entry:
    """One spooled file: its submission or hook request, or why it cannot be read.

    ``readable`` is False for a file this process may not read (permissions): it is left
    where it is and reported, never set aside, since another user can still deliver it.
    """

    path: Path
    submission: Submission | None
    problem: str = ""
    request: HookRequest | None = None
    readable: bool = True


def read_entry(path: Path, raw: bytes) -> Entry:
    """Parse one spooled file (a hook request or a submission)."""
    try:
        data = json.loads(raw)
        if isinstance(data, dict) and data.get("kind") == REQUEST_KIND:
            return Entry(path, None, request=HookRequest.from_json(raw))
        return Entry(path, Submission.model_validate(data))
    except (ValueError, ValidationError) as e:
        return Entry(path, None, str(e).splitlines()[0])


class Spool:
    """Spooled entries on local disk, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, submission: Submission) -> Path:
        """Write one submission durably; returns its file."""
        data = submission.model_dump_json().encode()
        return spool_store.write_entry(self.directory, submission.job.id, data)

    def entries(self) -> list[Entry]:
        """Every spooled entry, oldest first."""
        try:
            if not self.directory.is_dir():
                return []
            paths = sorted(self.directory.glob(f"*{SUFFIX}"))
        except OSError as e:
            raise spool_store.spool_error("cannot list it", self.directory, e) from e
        found = []
        for path in paths:
            try:
                found.append(read_entry(path, path.read_bytes()))
            except FileNotFoundError:
                continue  # another drainer took it
            except PermissionError as e:
                reason = spool_access.unreadable_reason(path, e)
                found.append(Entry(path, None, reason, readable=False))
            except OSError as e:
                found.append(Entry(path, None, str(e)))
        return found

    def names(self) -> set[str]:
        """The file names of every spooled entry, unread (cheap; for "did anything arrive")."""
        try:
            return {p.name for p in self.directory.glob(f"*{SUFFIX}")}
        except OSError:
            return set()

    def remove(self, entry: Entry) -> None:
        """Delete a delivered entry (durably)."""
        entry.path.unlink(missing_ok=True)
        spool_store.fsync_dir(self.directory)

    def quarantine(self, entry: Entry, reason: str) -> Path:
        """Move an entry that cannot be delivered to ``bad/`` (with a note) so it blocks none."""
        bad = self.directory / BAD_DIR
        spool_access.make_dir(bad)
        target = bad / entry.path.name
        entry.path.rename(target)
        fd = spool_access.open_file(target.with_suffix(".reason"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, (reason + "\n").encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)
        spool_store.fsync_dir(self.directory)
        return target

    def drain_lock(self, *, blocking: bool = False) -> contextlib.AbstractContextManager[bool]:
        """Hold the drain lock; yields False when another process is draining."""
        return spool_store.lock(self.directory, spool_store.DRAIN_LOCK, blocking=blocking)

    def service_lock(self) -> contextlib.AbstractContextManager[bool]:
        """Held by `kamado scheduler run` for its whole life."""
        return spool_store.lock(self.directory, spool_store.SERVICE_LOCK, blocking=False)

    def service_running(self) -> bool:
        """True while a scheduler service on this machine holds the service lock."""
        return spool_store.service_running(self.directory)
