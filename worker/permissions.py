"""One line for a failed system call: the path, the reason and the fix (often a group).

kamado's services run as user ``kamado``; the recorder's hook runs as the recorder's
user. They share files through group ``kamado`` (``/etc/kamado`` 0750 root:kamado, the
state directory's spool and logs 2770), so a "permission denied" usually means a user
missing from that group: the message names the user, the group and the command.
Standard library only: the recorder hook imports it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["SETUP_HINT", "SPOOL_GROUP", "group_of", "permission_fix", "stat_names", "user_name"]

SPOOL_GROUP = "kamado"
SETUP_HINT = "`kamado setup recorder` sets this up"


def user_name() -> str:
    """This process's user name (its uid when it has none)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def stat_names(st: os.stat_result) -> tuple[str, str]:
    """The owner and group names of a stat result (their numbers when a name is unknown)."""
    import grp
    import pwd

    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return owner, group


def group_of(path: Path) -> str:
    """The group that ``path`` (or its nearest ancestor) lets in further than others."""
    import grp

    for candidate in (path, *path.parents):
        try:
            st = candidate.stat()
        except OSError:
            continue
        if (st.st_mode >> 3) & 0o7 & ~st.st_mode:  # group bits beyond the others' bits
            try:
                return grp.getgrgid(st.st_gid).gr_name
            except KeyError:
                return str(st.st_gid)
    return SPOOL_GROUP


def permission_fix(path: Path | str, error: OSError) -> str:
    """One line naming the path, the reason and the fix, for a failed system call."""
    where = Path(os.fsdecode(error.filename)) if error.filename else Path(path)
    reason = error.strerror or str(error)
    if error.errno in (errno.EACCES, errno.EPERM):
        user, group = user_name(), group_of(where)
        return (
            f"{where}: permission denied for user {user}: add it to group {group} "
            f"(`usermod -aG {group} {user}`, then restart what runs as it); kamado's config "
            f"is 0640 root:{group} in a 0750 directory, its spool and logs directories "
            f"group {group} with mode 2770 ({SETUP_HINT})"
        )
    if error.errno == errno.EROFS:
        return f"{where}: {reason}: the state directory must be on a writable file system"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}: {reason}: free space on its file system; nothing was spooled"
    return f"{where}: {reason}"
