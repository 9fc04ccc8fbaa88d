"""Reading and editing systemd EnvironmentFile= files (``KEY=value`` lines) without losing lines."""

from __future__ import annotations

import json

__all__ = ["parse_env", "toml_string", "with_value"]


def parse_env(text: str) -> dict[str, str]:
    """The ``KEY=value`` pairs of an environment file (comments and blank lines skipped)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, value = stripped.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found


def with_value(text: str, key: str, value: str) -> str:
    """The file with ``key`` set to ``value``: its line replaced in place, else appended."""
    lines = text.splitlines()
    out = []
    done = False
    for line in lines:
        if line.strip().split("=", 1)[0].strip() == key and "=" in line and not done:
            out.append(f"{key}={value}")
            done = True
        else:
            out.append(line)
    if not done:
        out.append(f"{key}={value}")
    return "\n".join(out) + "\n"


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)
