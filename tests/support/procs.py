"""Finding real processes by their command line (to prove ffmpeg is gone)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def pids_with(fragment: str, program: bytes = b"ffmpeg") -> list[int]:
    """Pids of live processes whose argv[0] ends with ``program`` (b"" for any) and whose
    argv mentions ``fragment`` (NUL-separated arguments match as written)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        argv0 = cmdline.split(b"\0", 1)[0]
        if argv0.endswith(program) and fragment.encode() in cmdline:
            found.append(int(entry))
    return found


def wait_for(predicate: object, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is truthy or ``timeout`` passes; return the last result."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def parent_of(pid: int) -> int:
    """The parent pid of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])
