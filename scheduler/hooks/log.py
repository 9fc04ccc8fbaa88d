"""The hook log: recorders discard a hook's output, so each hook and delivery adds a line.

``<state_dir>/logs/hooks.log`` tells an operator what happened to every recording a
recorder handed over: spooled by the hook, then submitted, already known, held, skipped
or set aside by the delivery. The directory and file are shared with the scheduler's
user (:mod:`scheduler.spool.access`), whoever writes first.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from scheduler.spool.access import make_dir, open_file


def log_line(state_dir: Path, text: str) -> None:
    """Append one line to the hook log; a hook never fails over its log."""
    try:
        directory = state_dir / "logs"
        make_dir(directory)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        line = text.replace("\n", "\\n")
        data = f"{stamp} {line}\n".encode("utf-8", "backslashreplace")
        fd = open_file(directory / "hooks.log", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError:
        pass
