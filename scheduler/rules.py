"""Which profile a recording gets: the first matching `[[scheduler.rules]]`, else the default."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from worker.errors import ConfigError
from worker.jobs import Recording
from worker.profiles import all_profiles
from worker.settings.model import Settings
from worker.settings.scheduler import ProfileRule


def _search(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and re.search(pattern, value) is not None


def matches(rule: ProfileRule, recording: Recording | None, path: str, origin: str) -> bool:
    """True when the recording meets every condition the rule sets."""
    rec = recording or Recording()
    return (
        (rule.recorder is None or rule.recorder == origin)
        and (rule.path is None or fnmatchcase(path, rule.path))
        and _search(rule.channel, rec.channel)
        and _search(rule.title, rec.title)
        and _search(rule.genre, rec.genre)
    )


def choose_profile(settings: Settings, recording: Recording | None, path: str, origin: str) -> str:
    """The profile for this recording: the first rule that matches, else encode.default_profile."""
    for rule in settings.scheduler.rules:
        if matches(rule, recording, path, origin):
            return rule.profile
    return settings.encode.default_profile


def check_rules(settings: Settings) -> None:
    """Raise ConfigError when a rule or the default names a profile that does not exist."""
    known = all_profiles(settings.profiles)
    problems = [
        f"scheduler.rules.{i}.profile = {rule.profile!r}: unknown profile"
        for i, rule in enumerate(settings.scheduler.rules)
        if rule.profile not in known
    ]
    if settings.encode.default_profile not in known:
        problems.append(
            f"encode.default_profile = {settings.encode.default_profile!r}: unknown profile"
        )
    if problems:
        names = ", ".join(sorted(known))
        raise ConfigError(
            "invalid configuration: " + "; ".join(problems) + f" (known: {names})",
            problems=[f"{p} (known: {names})" for p in problems],
        )
