"""Values that validate but fail at run time: example values, missing files, unknown names.

The settings models check each value's form; this checks what a valid form still gets
wrong on a real box: a password or host name left from the examples (``change-me``,
``recorder.lan``), an SFTP location's key or known_hosts file that is not there, a
``scheduler.path_map`` target naming a location the config does not define, and a
``KAMADO_*`` line in the env file that names no setting (silently ignored otherwise).

Each :class:`Problem` names the field and the fix. ``error`` means it fails at run time
on this box (`kamado config check` exits 2); ``warning`` means it may fail elsewhere (a
path_map target whose location only the workers' configs can define) and exits 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr

from worker.settings.model import Settings
from worker.settings.staging import SftpLocation

PLACEHOLDER = re.compile(r"change-?me|<password>|<a long password>|:PASSWORD@|^PASSWORD$", re.I)
EXAMPLE_HOST = re.compile(
    r"\b(?:recorder|broker|nas|host|guest|gpu|kvm)\.lan\b|\bexample\.(?:com|org|net)\b"
    r"|\.example\b",
    re.IGNORECASE,
)
HOST_FIELDS = ("host", "hostname", "guest_hostname", "address")
ENV_PREFIX = "KAMADO_"
# Read as they are, not as settings: the config file's path, Flower's credentials.
ENV_EXTRA = ("CONFIG", "FLOWER_BASIC_AUTH")


@dataclass(frozen=True)
class Problem:
    """One value that will (error) or may (warning) fail at run time, and its fix."""

    field: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"

    def line(self) -> str:
        """The problem as one line: field, what is wrong, the fix."""
        return f"{self.field}: {self.message}; fix: {self.fix}"


def _walk(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, SecretStr):
        yield path, value.get_secret_value()
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(value, str | Path):
        yield path, str(value)


def _placeholder_fix(field: str) -> str:
    if field.endswith("basic_auth"):
        return "set a user:password of your own (KAMADO_FLOWER_BASIC_AUTH in kamado.env)"
    if field.endswith("url"):
        return "use the password of the broker's kamado user (deploy/redis/kamado.conf)"
    return "replace it with a secret of your own"


def example_values(settings: Settings) -> list[Problem]:
    """Passwords and host names still as the examples have them (never showing a secret)."""
    found = []
    for field, value in _walk(settings, ""):
        if PLACEHOLDER.search(value):
            found.append(
                Problem(field, "still the example's placeholder secret", _placeholder_fix(field))
            )
            continue
        last = field.rsplit(".", 1)[-1]
        if last in HOST_FIELDS or last.endswith("url"):
            hit = EXAMPLE_HOST.search(value)
            if hit:
                found.append(
                    Problem(
                        field,
                        f"{hit.group(0)!r} is a host name from the examples",
                        "set this network's real host name or address",
                    )
                )
    return found


def key_files(settings: Settings) -> list[Problem]:
    """Each SFTP location's key and known_hosts files exist and this user can read them."""
    found = []
    for name, loc in settings.staging.locations.items():
        if not isinstance(loc, SftpLocation):
            continue
        for label, path in (("key_file", loc.key_file), ("known_hosts", loc.known_hosts)):
            field = f"staging.locations.{name}.{label}"
            setup = f"`kamado setup location {name}` creates the key pair and known_hosts"
            try:
                present = path.is_file()
            except OSError as e:
                found.append(Problem(field, f"{path}: {e.strerror or e}", setup))
                continue
            if not present:
                found.append(Problem(field, f"{path}: no such file", setup))
            elif not os.access(path, os.R_OK):
                found.append(
                    Problem(
                        field,
                        f"{path}: not readable by this user",
                        "make it readable by the user that runs the worker (user kamado)",
                    )
                )
    return found


def path_map_targets(settings: Settings) -> list[Problem]:
    """Each ``sftp://NAME/...`` path_map target names a location of ``[staging.locations]``."""
    locations = settings.staging.locations
    found = []
    for index, mapping in enumerate(settings.scheduler.path_map):
        if not mapping.target.startswith("sftp://"):
            continue
        name = mapping.target.removeprefix("sftp://").split("/", 1)[0]
        if name in locations:
            continue
        field = f"scheduler.path_map[{index}].target"
        if locations:
            defined = ", ".join(sorted(locations))
            found.append(
                Problem(
                    field,
                    f"names location {name!r}, which [staging.locations] does not define "
                    f"(it defines {defined})",
                    f"define [staging.locations.{name}] or correct the target",
                )
            )
        else:
            found.append(
                Problem(
                    field,
                    f"names location {name!r}, which this config does not define",
                    f"every worker's config must define [staging.locations.{name}] "
                    f"(`kamado setup location {name}` on each worker)",
                    "warning",
                )
            )
    return found


def _names_setting(parts: list[str]) -> bool:
    model: type[BaseModel] | None = Settings
    for part in parts:
        if model is None:
            return True  # inside a dict (profiles, locations): any key is a name
        fields = {name.lower(): info for name, info in model.model_fields.items()}
        info = fields.get(part.lower())
        if info is None:
            return False
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel
        ) else None  # fmt: skip
    return True


def env_names(env: Mapping[str, str], source: str) -> list[Problem]:
    """``KAMADO_*`` variables of an env file that name no setting (a typo is ignored)."""
    found = []
    for key in env:
        if not key.upper().startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        if name.upper() in ENV_EXTRA or _names_setting(name.split("__")):
            continue
        found.append(
            Problem(
                f"{key} (in {source})",
                "names no setting, so kamado ignores it",
                "spell it as KAMADO_<key> with __ between sections "
                "(e.g. KAMADO_BROKER_URL, KAMADO_SCHEDULER__SPOOL_DIR)",
            )
        )
    return found


def lint(
    settings: Settings, env: Mapping[str, str] | None = None, source: str = ""
) -> list[Problem]:
    """Every run-time problem of a valid config (and of its env file's names), errors first."""
    problems = example_values(settings) + key_files(settings) + path_map_targets(settings)
    if env is not None:
        problems += env_names(env, source)
    return sorted(problems, key=lambda p: p.severity != "error")
