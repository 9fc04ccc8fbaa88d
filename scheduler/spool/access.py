"""How the recorder's user and the scheduler service share the spool and the hook log.

A hook runs as whoever the recorder runs it as (EPGStation's user, or root); the
scheduler service runs as ``kamado``. They share the state directory through a group:

- the state directory, ``spool/`` and ``logs/`` are group ``kamado``, setgid, mode 2770
  (``DIR_MODE``), so everything created in them gets that group;
- entries, lock files and logs are written ``ENTRY_MODE`` (0660) whatever the caller's
  umask, so every member can read, replace and remove them;
- a process running as root hands what it creates to the owner and group of the
  directory it creates it in, so a root hook leaves nothing the service cannot use;
- the config the hook reads (``/etc/kamado/kamado.toml``) is ``CONFIG_MODE`` root:kamado.

A directory whose parent is not setgid (a one-user setup under ``~/.local/state``) stays
private (0700). Only the standard library is used: the hook imports this module.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from worker.permissions import (
    SETUP_HINT,
    SPOOL_GROUP,
    group_of,
    permission_fix,
    stat_names,
    user_name,
)

__all__ = [
    "CONFIG_DIR_MODE",
    "CONFIG_MODE",
    "DIR_MODE",
    "ENTRY_MODE",
    "PRIVATE_DIR_MODE",
    "SPOOL_GROUP",
    "make_dir",
    "open_file",
    "permission_fix",
    "unreadable_reason",
]

DIR_MODE = 0o2770
PRIVATE_DIR_MODE = 0o700
ENTRY_MODE = 0o660
CONFIG_MODE = 0o640
CONFIG_DIR_MODE = 0o750


def _hand_over(fd_or_path: int | Path, parent: os.stat_result) -> None:
    """As root, give a new file or directory to its directory's owner and group."""
    if os.geteuid() != 0:
        return
    if isinstance(fd_or_path, int):
        os.fchown(fd_or_path, parent.st_uid, parent.st_gid)
    else:
        os.chown(fd_or_path, parent.st_uid, parent.st_gid)


def make_dir(path: Path, *, shared: bool | None = None) -> None:
    """Create ``path`` if missing: 2770 when shared (default: its parent is setgid), else 0700.

    The umask is ignored; missing ancestors are created first the same way. Run as root,
    the new directory belongs to its parent's owner and group.
    """
    if path.is_dir():
        return
    parent = path.parent
    if parent != path and not parent.is_dir():
        make_dir(parent, shared=shared)
    parent_stat = parent.stat()
    is_shared = bool(parent_stat.st_mode & stat.S_ISGID) if shared is None else shared
    mode = DIR_MODE if is_shared else PRIVATE_DIR_MODE
    try:
        path.mkdir(mode)
    except FileExistsError:
        return  # another process made it meanwhile
    _hand_over(path, parent_stat)
    path.chmod(mode)  # after the chown, which clears the setgid bit


def open_file(path: Path, flags: int, *, exclusive: bool = False) -> int:
    """Open ``path``, creating it ``ENTRY_MODE`` (umask ignored) if missing; the fd.

    A file this process owns with another mode (written by an older kamado) is given
    ``ENTRY_MODE``. ``exclusive`` fails if the file exists (a new entry's temp file).
    """
    flags |= os.O_CLOEXEC
    created = True
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, ENTRY_MODE)
    except FileExistsError:
        if exclusive:
            raise
        fd = os.open(path, flags)
        created = False
    try:
        if created:
            _hand_over(fd, path.parent.stat())
            os.fchmod(fd, ENTRY_MODE)  # the umask notwithstanding
        else:
            st = os.fstat(fd)
            if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != ENTRY_MODE:
                os.fchmod(fd, ENTRY_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def unreadable_reason(path: Path, error: OSError) -> str:
    """Why this process cannot read a spooled entry (owner, mode) and how to fix it."""
    try:
        st = path.stat()
        owner, group = stat_names(st)
        found = f"owner {owner}, group {group}, mode {stat.S_IMODE(st.st_mode):04o}"
    except OSError:
        found = "its owner and mode cannot be read"
    share = group_of(path.parent)
    return (
        f"unreadable by user {user_name()} ({error.strerror or error}; {found}): left in the "
        f"spool; make it readable with `chgrp {share} '{path}' && chmod 0660 '{path}'` "
        f"and it is delivered on the next pass ({SETUP_HINT} for later recordings)"
    )
