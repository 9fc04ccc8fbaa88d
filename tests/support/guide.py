"""The walkable blocks of docs/deploy.md: ``<!-- walk: NAME -->`` before a fenced block."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
BLOCK = re.compile(r"<!-- walk: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.DOTALL)
# Programs the walk knows; each is run, checked, or skipped for a stated reason.
KNOWN = {
    "sudo", "kamado", "apt-get", "git", "python3", "/opt/kamado/venv/bin/pip", "ln",
    "systemctl", "usermod", "echo", "install",
}  # fmt: skip


def blocks(text: str | None = None) -> dict[str, tuple[str, str]]:
    """Walk name → (fence language, body), in the guide's order."""
    found: dict[str, tuple[str, str]] = {}
    for name, lang, body in BLOCK.findall(text if text is not None else GUIDE.read_text()):
        if name in found:
            raise ValueError(f"docs/deploy.md: two blocks are marked walk: {name}")
        found[name] = (lang, body)
    return found


def commands(body: str) -> list[list[str]]:
    """One argv per command line of a shell block (continuations joined, sudo dropped)."""
    joined = body.replace("\\\n", " ")
    argvs = []
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(line, comments=True)
        argvs.append(without_sudo(argv))
    return argvs


def steps(body: str) -> list[tuple[str, list[str]]]:
    """(the user sudo runs it as, argv) per command line; "root" for plain sudo."""
    found = []
    for line in body.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(line, comments=True)
        user = argv[2] if argv[:2] == ["sudo", "-u"] else "root"
        found.append((user, without_sudo(argv)))
    return found


def without_sudo(argv: list[str]) -> list[str]:
    """The command sudo would run (``sudo -u USER cmd`` → cmd)."""
    if argv[:1] != ["sudo"]:
        return argv
    rest = argv[1:]
    if rest[:1] == ["-u"]:
        rest = rest[2:]
    return rest


def option_value(argv: list[str], option: str) -> str | None:
    """The value after ``option`` in argv, if given."""
    if option in argv:
        return argv[argv.index(option) + 1]
    return None


def replace_option(argv: list[str], option: str, value: str) -> list[str]:
    """argv with ``option``'s value replaced (or the option added)."""
    if option in argv:
        i = argv.index(option)
        return [*argv[: i + 1], value, *argv[i + 2 :]]
    return [*argv, option, value]
