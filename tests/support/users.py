"""Real Unix accounts for tests of what two users share (the recorder's and the service's).

:class:`Accounts` creates a group and users with ``groupadd``/``useradd`` under unique
names and removes them (and any process still running as them) afterwards. Commands run
as a user through ``setpriv`` with the umask the test chooses. When the interpreter sits
under a directory other users may not enter (pyenv under ``/root``), commands run in a
private mount namespace where that directory is a traversable tmpfs holding only the
interpreter's tree bound back in: the permissions under test are the real ones.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import wait_for


@dataclass(frozen=True)
class Account:
    """One test user: its name, uid and primary gid."""

    name: str
    uid: int
    gid: int


def _blocked_ancestor(path: Path) -> Path | None:
    """The topmost directory on ``path`` that other users cannot enter, if any."""
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


class Accounts:
    """A group plus users made for one test, and a way to run commands as them."""

    def __init__(self) -> None:
        self.tag = os.urandom(3).hex()
        self.group = f"kmd{self.tag}"
        self.base = Path(tempfile.mkdtemp(prefix="kamado-users-", dir="/tmp"))
        self.base.chmod(0o755)
        self.accounts: dict[str, Account] = {}
        self._holder: subprocess.Popen[bytes] | None = None
        _run(["groupadd", "--system", self.group])
        self.gid = grp.getgrnam(self.group).gr_gid
        self._namespace()

    def add(self, role: str, *, member: bool, primary: bool = False) -> Account:
        """A new user (``member``: in the shared group; ``primary``: as its primary group)."""
        name = f"kmd{self.tag}{role[:6]}"
        argv = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                "--shell", "/usr/sbin/nologin"]  # fmt: skip
        if primary:
            argv += ["--gid", self.group]
        else:
            argv += ["--user-group"]
            if member:
                argv += ["--groups", self.group]
        _run([*argv, name])
        entry = pwd.getpwnam(name)
        self.accounts[role] = Account(name, entry.pw_uid, entry.pw_gid)
        return self.accounts[role]

    def _namespace(self) -> None:
        """Start a mount namespace where the interpreter is reachable by any user, if needed."""
        real = Path(os.path.realpath(sys.executable))
        blocked = _blocked_ancestor(real)
        if blocked is None:
            return
        inner = blocked / real.relative_to(blocked).parts[0]
        assert _blocked_ancestor(inner / "x") in (blocked, None)
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sleep", "3600"]
        )
        own = f"/proc/{self._holder.pid}/ns/mnt"
        assert wait_for(lambda: os.readlink(own) != os.readlink("/proc/self/ns/mnt"), 10)
        stage = self.base / ".interpreter"
        stage.mkdir()
        enter = self.enter()
        _run([*enter, "mount", "--bind", str(inner), str(stage)])
        _run([*enter, "mount", "-t", "tmpfs", "-o", "mode=0755", "kamado-test", str(blocked)])
        _run([*enter, "mkdir", str(inner)])
        _run([*enter, "mount", "--bind", str(stage), str(inner)])

    def enter(self) -> list[str]:
        """The argv prefix that runs a command in the test's mount namespace (or nothing)."""
        if self._holder is None:
            return []
        return ["nsenter", "--target", str(self._holder.pid), "--mount", "--"]

    def argv(self, role: str | None, argv: list[str]) -> list[str]:
        """``argv`` as run by the role's user (None: root), in the namespace."""
        if role is None:
            return [*self.enter(), *argv]
        user = self.accounts[role]
        return [*self.enter(), "setpriv", "--reuid", str(user.uid), "--regid", str(user.gid),
                "--init-groups", "--", *argv]  # fmt: skip

    def run(
        self, role: str | None, argv: list[str], *, env: dict[str, str], umask: int = 0o022,
        cwd: Path | None = None, timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run ``argv`` as the role's user with exactly ``env`` and ``umask``; wait for it."""
        return subprocess.run(
            self.argv(role, argv), env=env, umask=umask, cwd=cwd or self.base,
            capture_output=True, text=True, timeout=timeout, errors="replace",
        )  # fmt: skip

    def popen(
        self, role: str | None, argv: list[str], *, env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[str]:
        """Start ``argv`` as the role's user (stderr piped, as text)."""
        return subprocess.Popen(
            self.argv(role, argv), env=env, cwd=cwd or self.base,
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, errors="replace",
        )  # fmt: skip

    def pids(self) -> list[int]:
        """Live processes running as one of these users (e.g. a hook's detached delivery)."""
        uids = {str(a.uid) for a in self.accounts.values()}
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{entry}/status").read_text()
                line = next(x for x in status.splitlines() if x.startswith("Uid:"))
                state = next(x for x in status.splitlines() if x.startswith("State:"))
                if line.split()[1] in uids and " Z " not in f"{state} ":
                    found.append(int(entry))
        return found

    def close(self) -> None:
        """End these users' processes, remove the users, the group and the files."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.pids(), 10)
        time.sleep(0.1)
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait(10)
        for account in self.accounts.values():
            subprocess.run(["userdel", account.name], capture_output=True, timeout=60)
            # its own group, when userdel kept it (USERGROUPS_ENAB off, or a member left)
            subprocess.run(["groupdel", account.name], capture_output=True, timeout=60)
        subprocess.run(["groupdel", self.group], capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)
