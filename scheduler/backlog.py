"""Finding recordings for `kamado enqueue`: expand arguments, skip what is not ready.

A file is skipped, with its reason, when its name does not end like a recording, is not
UTF-8, it is not a regular file (a FIFO or a device is never opened), it is empty or
unreadable, it is newer than ``--older-than``, it was written in
the last ``scheduler.min_age`` seconds, a process has it open for writing, it has no
MPEG-TS sync bytes, or its size changes during ``scheduler.settle_time``.
"""

from __future__ import annotations

import glob
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.paths import shown, sniff_ts
from worker.errors import BadInputError
from worker.outputs.identity import kind_of
from worker.settings.scheduler import SchedulerSettings

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Found:
    """A file that looks like a finished recording."""

    path: Path
    size: int
    mtime: float


@dataclass
class Scan:
    """What the arguments held: recordings to submit and files skipped with reasons."""

    found: list[Found] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: Path | str, reason: str) -> None:
        """Note a skipped file."""
        self.skipped.append((shown(path), reason))


def expand(args: list[str], *, recursive: bool) -> list[Path]:
    """Files named by the arguments (paths, directories, glob patterns), in a stable order.

    Raises BadInputError naming the first argument that matches nothing.
    """
    files: dict[str, Path] = {}
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            walker = path.rglob("*") if recursive else path.iterdir()
            for child in sorted(walker):
                if child.is_file():
                    files.setdefault(str(child), child)
        elif path.exists() or path.is_symlink():
            files.setdefault(str(path), path)
        elif GLOB_CHARS & set(arg):
            # Path.glob takes no absolute patterns; glob.glob does, and keeps names verbatim.
            matches = sorted(glob.glob(arg, recursive=recursive))  # noqa: PTH207
            if not matches:
                raise BadInputError(f"{shown(arg)}: the pattern matches no file")
            for match in matches:
                found = Path(match)
                if found.is_file():
                    files.setdefault(match, found)
        else:
            raise BadInputError(f"{shown(arg)}: no such file or directory")
    return list(files.values())


def open_for_writing(candidates: dict[tuple[int, int], Path]) -> dict[tuple[int, int], int]:
    """Which of these files (by device and inode) a process has open for writing, and its pid."""
    busy: dict[tuple[int, int], int] = {}
    try:
        procs = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    except OSError:
        return busy
    for proc in procs:
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                st = fd.stat()
                key = (st.st_dev, st.st_ino)
                if key not in candidates:
                    continue
                info = (proc / "fdinfo" / fd.name).read_text(encoding="ascii")
            except OSError:
                continue
            flags = next(
                (ln.split()[1] for ln in info.splitlines() if ln.startswith("flags:")), "0"
            )
            if int(flags, 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                busy[key] = int(proc.name)
    return busy


def first_look(
    path: Path, settings: SchedulerSettings, now: float, older_than: float | None
) -> os.stat_result | str:
    """The file's stat when it may be a finished recording, else why it is skipped."""
    name = os.fsdecode(path)
    if not name.lower().endswith(tuple(settings.recording_suffixes)):
        return "not a recording (suffix)"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename it, e.g. with convmv)"
    try:
        st = path.stat()
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):  # never opened: reading a FIFO blocks for a writer
        return f"not a regular file ({kind_of(st.st_mode)})"
    age = now - st.st_mtime
    if older_than is not None and age < older_than:
        return "newer than --older-than"
    if age < settings.min_age:
        return f"still being written (modified {age:.0f} s ago)"
    return sniff_ts(path) or st


def scan(
    files: list[Path],
    settings: SchedulerSettings,
    *,
    older_than: float | None = None,
    settle: float | None = None,
) -> Scan:
    """Sort files into recordings ready to submit and skipped ones with their reasons."""
    result = Scan()
    now = time.time()
    ready: dict[tuple[int, int], tuple[Path, os.stat_result]] = {}
    for path in files:
        look = first_look(path, settings, now, older_than)
        if isinstance(look, str):
            result.skip(path, look)
        else:
            ready[(look.st_dev, look.st_ino)] = (path, look)
    writers = open_for_writing({k: p for k, (p, _) in ready.items()})
    wait = settings.settle_time if settle is None else settle
    if wait > 0 and ready:
        time.sleep(wait)
    for key, (path, st) in ready.items():
        if key in writers:
            result.skip(path, f"still being written (open by process {writers[key]})")
            continue
        try:
            again = path.stat()
        except OSError as e:
            result.skip(path, f"unreadable ({e.strerror or e})")
            continue
        if wait > 0 and (again.st_size, again.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            result.skip(path, "still being written (size changing)")
            continue
        result.found.append(Found(path, again.st_size, again.st_mtime))
    return result


def parse_age(text: str) -> float:
    """Seconds from a duration such as 90s, 30m, 12h, 7d or 2w (a bare number is seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in units else "s"
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = float(number)
    except ValueError:
        raise BadInputError(
            f"--older-than {text!r}: expected a duration such as 90s, 30m, 12h, 7d or 2w"
        ) from None
    if value < 0:
        raise BadInputError(f"--older-than {text!r}: must not be negative")
    return value * units[unit]
