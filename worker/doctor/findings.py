"""What a doctor check reports, and what every check is given about the box."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from worker.settings.model import Settings

__all__ = ["Context", "Finding", "Severity", "bad", "ok"]

ROLES = ("recorder", "host", "guest", "worker")


class Severity(StrEnum):
    """How bad a finding is: ``fail`` would break a job, ``warn`` might, ``ok`` passed."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at: what, the verdict, what it saw and how to fix it."""

    check: str
    subject: str
    severity: Severity
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


@dataclass
class Context:
    """What the checks share: the box's roles, its users, its config (or why it failed)."""

    roles: set[str]
    config_path: Path | None
    env_file: Path | None
    settings: Settings | None
    config_problems: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    service_user: str = "kamado"
    hook_user: str = ""
    root: Path = Path("/")  # where /etc/systemd/system is looked up (a temp tree in tests)


def ok(check: str, subject: str, detail: str) -> Finding:
    """A passed check."""
    return Finding(check, subject, Severity.OK, detail)


def bad(check: str, subject: str, detail: str, fix: str, *, severe: bool = True) -> Finding:
    """A failed check (``severe``: it would break a job) with its fix."""
    return Finding(check, subject, Severity.FAIL if severe else Severity.WARN, detail, fix)
