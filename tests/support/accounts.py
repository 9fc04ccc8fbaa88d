"""Real Unix accounts for tests (the suite runs as root): unique names, always removed."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.workers import environ_without_kamado

KAMADO_SCRIPT = Path(sys.executable).parent / "kamado"


def is_root() -> bool:
    """True when the tests may create accounts."""
    return os.geteuid() == 0


def unique_name(prefix: str) -> str:
    """An account name nobody has (Debian allows 32 characters)."""
    return f"{prefix}-{secrets.token_hex(4)}"


def remove_account(name: str) -> None:
    """Delete the user and the group ``name`` if they exist."""
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        subprocess.run(["userdel", name], check=False, capture_output=True, timeout=30)
    with contextlib.suppress(KeyError):
        grp.getgrnam(name)
        subprocess.run(["groupdel", name], check=False, capture_output=True, timeout=30)


@contextlib.contextmanager
def accounts(*prefixes: str) -> Iterator[list[str]]:
    """Unique account names for the test; every user and group by those names is removed."""
    names = [unique_name(p) for p in prefixes]
    try:
        yield names
    finally:
        for name in names:
            remove_account(name)


def add_user(name: str, *, shell: str = "/usr/sbin/nologin", home: str = "/nonexistent") -> None:
    """A system user with its own group, unlocked for key logins (password '*')."""
    subprocess.run(
        ["useradd", "--system", "--user-group", "--home-dir", home, "--shell", shell, name],
        check=True,
        capture_output=True,
        timeout=30,
    )
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True, timeout=30)


def kamado(
    *args: str, env: dict[str, str] | None = None, user: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed `kamado` script (as ``user`` through runuser when given).

    `kamado setup` makes real accounts: a test must name its own with --account, or the
    machine would get a real `kamado` user.
    """
    if args[:1] == ("setup",) and "--help" not in args:
        assert "--account" in args, f"kamado {' '.join(args)}: pass a test --account"
    argv = [str(KAMADO_SCRIPT), *args]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    environment = environ_without_kamado() | {"HOME": "/nonexistent"} | (env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environment)
