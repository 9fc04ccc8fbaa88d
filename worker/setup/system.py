"""The machine that `kamado setup` changes: accounts, files and commands, each one logged.

Every change goes through :class:`System`, which checks first (so a second run changes
nothing), records what it did or, with ``dry_run``, only what it would do. Files are
written under ``root`` (``/`` on a real box, a temporary tree in tests); accounts are the
system's own, created with ``useradd``/``groupadd`` through :mod:`worker.process`.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from worker import process
from worker.errors import ProcessError
from worker.permissions import stat_names
from worker.setup.errors import SetupError

__all__ = ["System", "owner_names", "user_exists"]

COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Action:
    """One step of a setup: what it is about, and whether it changed anything."""

    what: str
    detail: str
    changed: bool
    argv: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return asdict(self)


def tool(name: str) -> str:
    """The absolute path of a system program (root's PATH lacks /usr/sbin under sudo -u)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise SetupError(f"{name}: not installed (Debian: apt install {_PACKAGES.get(name, name)})")
    return found


_PACKAGES = {
    "useradd": "passwd",
    "groupadd": "passwd",
    "usermod": "passwd",
    "ssh-keygen": "openssh-client",
    "ssh-keyscan": "openssh-client",
    "systemctl": "systemd",
}


class System:
    """Idempotent changes to accounts and files, recorded as actions."""

    def __init__(self, root: Path = Path("/"), *, dry_run: bool = False) -> None:
        self.root = root
        self.dry_run = dry_run
        self.actions: list[Action] = []

    # --- paths --------------------------------------------------------------------
    def path(self, absolute: str | Path) -> Path:
        """Where an absolute path of the target box lies under ``root``."""
        text = str(absolute)
        if not text.startswith("/"):
            raise SetupError(f"{text}: expected an absolute path", path=text)
        return self.root / text.lstrip("/")

    def note(
        self, what: str, detail: str, changed: bool = False, argv: list[str] | None = None
    ) -> None:
        """Record a step (a check, or a change made some other way)."""
        self.actions.append(Action(what, detail, changed, argv or []))

    # --- commands -----------------------------------------------------------------
    def run(self, argv: list[str], what: str, *, changes: bool = True) -> str:
        """Run a command (a change is only shown under dry_run); its stdout."""
        if changes and self.dry_run:
            self.note(what, "would run: " + " ".join(argv), True, argv)
            return ""
        try:
            result = process.run(argv, timeout=COMMAND_TIMEOUT, check=True)
        except ProcessError as e:
            tail = process.last_line(e.stderr_tail) if e.stderr_tail else str(e)
            raise SetupError(f"{what}: {Path(argv[0]).name} failed: {tail}") from e
        if changes:
            self.note(what, "ran: " + " ".join(argv), True, argv)
        return result.stdout

    # --- accounts -----------------------------------------------------------------
    def ensure_group(self, name: str) -> None:
        """A system group ``name``."""
        if group_exists(name):
            self.note(f"group {name}", "exists", False)
            return
        self.run([tool("groupadd"), "--system", name], f"group {name}")

    def ensure_user(self, name: str, *, home: str, group: str) -> None:
        """A system account ``name`` (no login shell, no password) in its own group."""
        if user_exists(name):
            self.note(f"user {name}", "exists", False)
            return
        argv = [
            tool("useradd"), "--system", "--gid", group, "--home-dir", home,
            "--no-create-home", "--shell", "/usr/sbin/nologin", name,
        ]  # fmt: skip
        self.run(argv, f"user {name}")

    def ensure_member(self, user: str, group: str) -> None:
        """``user`` in the supplementary group ``group``."""
        if not user_exists(user) and not self.dry_run:
            raise SetupError(f"user {user}: no such user on this machine")
        if user in members(group):
            self.note(f"user {user}", f"already in group {group}", False)
            return
        self.run([tool("usermod"), "--append", "--groups", group, user], f"user {user}")

    # --- files --------------------------------------------------------------------
    def ensure_dir(
        self, absolute: str, *, owner: str, group: str, mode: int, keep: bool = False
    ) -> None:
        """A directory with this owner, group and mode (created with its parents).

        ``keep``: an existing directory is left as it is (another step owns its mode).
        """
        target = self.path(absolute)
        want = f"{owner}:{group} {mode:04o}"
        if target.is_dir() and keep:
            self.note(absolute, "directory exists, kept")
            return
        if target.is_dir():
            if self._meta_matches(target, owner, group, mode):
                self.note(absolute, f"directory {want}", False)
                return
            self.note(absolute, f"set directory to {want}", True)
        elif target.exists():
            raise SetupError(f"{absolute}: exists and is not a directory", path=absolute)
        else:
            self.note(absolute, f"create directory {want}", True)
        if self.dry_run:
            return
        target.mkdir(parents=True, exist_ok=True)
        self._apply_meta(target, owner, group, mode)

    def ensure_file(
        self, absolute: str, content: str, *, owner: str, group: str, mode: int, replace: bool
    ) -> bool:
        """A file with this content (kept when it exists and ``replace`` is false); changed?"""
        target = self.path(absolute)
        want = f"{owner}:{group} {mode:04o}"
        exists = target.is_file()
        if exists and (not replace or target.read_text(encoding="utf-8") == content):
            if self._meta_matches(target, owner, group, mode):
                self.note(absolute, f"file {want}, kept", False)
                return False
            self.note(absolute, f"set file to {want}", True)
            if not self.dry_run:
                self._apply_meta(target, owner, group, mode)
            return True
        if target.exists() and not exists:
            raise SetupError(f"{absolute}: exists and is not a regular file", path=absolute)
        self.note(absolute, f"{'replace' if exists else 'write'} file {want}", True)
        if self.dry_run:
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.kamado-setup")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        self._apply_meta(temp, owner, group, mode)
        temp.replace(target)
        return True

    def ensure_meta(self, absolute: str, *, owner: str, group: str, mode: int) -> None:
        """An existing file's owner, group and mode."""
        target = self.path(absolute)
        want = f"{owner}:{group} {mode:04o}"
        if target.exists() and self._meta_matches(target, owner, group, mode):
            self.note(absolute, want, False)
            return
        self.note(absolute, f"set to {want}", True)
        if not self.dry_run:
            self._apply_meta(target, owner, group, mode)

    def ensure_symlink(self, absolute: str, points_to: str) -> None:
        """A symbolic link at ``absolute`` to ``points_to`` (an absolute path of the box)."""
        target = self.path(absolute)
        if target.is_symlink() and str(target.readlink()) == points_to:
            self.note(absolute, f"links to {points_to}", False)
            return
        if target.exists() and not target.is_symlink():
            raise SetupError(f"{absolute}: exists and is not a symbolic link", path=absolute)
        self.note(absolute, f"link to {points_to}", True)
        if self.dry_run:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        target.symlink_to(points_to)

    def _meta_matches(self, target: Path, owner: str, group: str, mode: int) -> bool:
        st = target.stat()
        return (
            st.st_uid == uid_of(owner, self.dry_run)
            and st.st_gid == gid_of(group, self.dry_run)
            and (st.st_mode & 0o7777) == mode
        )

    def _apply_meta(self, target: Path, owner: str, group: str, mode: int) -> None:
        try:
            os.chown(target, uid_of(owner), gid_of(group))
            target.chmod(mode)  # after chown, which clears setgid
        except OSError as e:
            raise SetupError(f"{target}: {e.strerror or e}", path=target) from e


def user_exists(name: str) -> bool:
    """True when the account exists on this machine."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def group_exists(name: str) -> bool:
    """True when the group exists on this machine."""
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def members(group: str) -> set[str]:
    """Users in ``group``, as primary or supplementary group."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return set()
    found = set(entry.gr_mem)
    found.update(p.pw_name for p in pwd.getpwall() if p.pw_gid == entry.gr_gid)
    return found


def uid_of(name: str, dry_run: bool = False) -> int:
    """The uid of an account (-1 for one a dry run has not created yet)."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        if dry_run:
            return -1
        raise SetupError(f"user {name}: no such user on this machine") from None


def gid_of(name: str, dry_run: bool = False) -> int:
    """The gid of a group (-1 for one a dry run has not created yet)."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if dry_run:
            return -1
        raise SetupError(f"group {name}: no such group on this machine") from None


def owner_names(path: Path) -> tuple[str, str]:
    """The owner and group names of a file (numbers when the name is unknown)."""
    return stat_names(path.stat())
