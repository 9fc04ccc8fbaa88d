"""Whether another user may read, write or enter a path, from owners and mode bits.

``os.access`` answers only for the calling user; the doctor runs as root and asks for
the hook's user and the service's. POSIX ACLs are not read (kamado's set-up uses none).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from worker.permissions import stat_names

__all__ = ["blocked"]

READ, WRITE, EXECUTE = 4, 2, 1


def groups_of(user: str) -> set[int]:
    """The gids of ``user``: its primary group and every group listing it."""
    entry = pwd.getpwnam(user)
    found = {entry.pw_gid}
    found.update(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)
    return found


def _allowed(st: os.stat_result, uid: int, gids: set[int], bit: int) -> bool:
    if uid == 0:
        # root reads and writes anything; it executes only what someone may execute
        return bit != EXECUTE or stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    if st.st_uid == uid:
        shift = 6
    elif st.st_gid in gids:
        shift = 3
    else:
        shift = 0
    return bool((st.st_mode >> shift) & bit)


def blocked(user: str, path: Path, want: str) -> str | None:
    """Why ``user`` may not ``want`` ('r', 'w', 'rw', 'x') ``path``, or None if it may.

    For a path that does not exist yet, writing means writing its nearest existing parent.
    """
    entry = pwd.getpwnam(user)
    uid, gids = entry.pw_uid, groups_of(user)
    path = Path(os.path.normpath(Path.cwd() / path))
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    if target != path:
        want = "w" if "w" in want or "r" in want else want
    for parent in reversed(target.parents):
        st = parent.stat()
        if not _allowed(st, uid, gids, EXECUTE):
            return f"{user} cannot enter {parent} ({_describe(st)})"
    st = target.stat()
    for letter, bit, verb in (("r", READ, "read"), ("w", WRITE, "write"), ("x", EXECUTE, "enter")):
        if letter in want and not _allowed(st, uid, gids, bit):
            return f"{user} cannot {verb} {target} ({_describe(st)})"
    if target.is_dir() and "w" in want and not _allowed(st, uid, gids, EXECUTE):
        return f"{user} cannot enter {target} ({_describe(st)})"
    return None


def _describe(st: os.stat_result) -> str:
    owner, group = stat_names(st)
    return f"{owner}:{group} {stat.S_IMODE(st.st_mode):04o}"
