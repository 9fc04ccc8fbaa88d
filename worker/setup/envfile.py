"""Reading and editing systemd EnvironmentFile= files (``KEY=value`` lines) without losing lines."""

from __future__ import annotations

import json

from worker.settings.file import parse_env  # read by the settings too; edited here

__all__ = ["parse_env", "toml_string", "with_value"]


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
