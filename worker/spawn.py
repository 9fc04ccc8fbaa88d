"""Starting a process that outlives the one starting it (for short-lived commands).

A recorder hook hands the spool's delivery to a process of its own and exits. Recorders
may kill a hook's whole process group when it ends or times out, so the child starts in
a new session. ``os.posix_spawn`` is used rather than :mod:`subprocess` (whose import
with kamado's process helpers costs a hook about 20 ms): nothing is waited for, read or
piped, so nothing of :mod:`worker.process` is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

from worker.errors import ProcessError

__all__ = ["spawn_detached"]


def _actions(log: Path | None, inherit: dict[int, int]) -> list[tuple[object, ...]]:
    err: tuple[object, ...] = (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)
    if log is not None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        err = (os.POSIX_SPAWN_OPEN, 2, str(log), flags, 0o600)
    return [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        err,
        *((os.POSIX_SPAWN_DUP2, parent, child) for child, parent in sorted(inherit.items())),
    ]


def spawn_detached(
    argv: list[str], *, log: Path | None = None, inherit: dict[int, int] | None = None
) -> int:
    """Start ``argv`` (argv[0] an executable path) in its own session; its pid.

    Its stdin and stdout are /dev/null; its stderr is appended to ``log`` when given
    (or goes to /dev/null when ``log`` cannot be opened). ``inherit`` maps a child's fd
    number to one of ours that it gets (an open log, a held lock); 2 replaces stderr.
    """
    inherit = inherit or {}
    if log is not None:
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            log = None
    try:
        try:
            return os.posix_spawn(argv[0], argv, os.environ, file_actions=_actions(log, inherit),
                                  setsid=True)  # fmt: skip
        except OSError:
            if log is None:
                raise
            return os.posix_spawn(argv[0], argv, os.environ, file_actions=_actions(None, inherit),
                                  setsid=True)  # fmt: skip
    except OSError as e:
        raise ProcessError(f"cannot start {argv[0]}: {e.strerror or e}", argv=argv) from e
