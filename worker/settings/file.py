"""Finding and reading kamado's config file, without the settings models.

Kept apart from :mod:`worker.settings.model` (which needs pydantic-settings and every role's
config section) so a recorder hook can find the file and tell whether it changed at the
cost of a few ``stat`` calls.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from worker.errors import ConfigError

__all__ = ["code_stamp", "find_config", "kamado_environment"]

CONFIG_ENV = "KAMADO_CONFIG"
USER_CONFIG = Path("~/.config/kamado/kamado.toml")
SYSTEM_CONFIG = Path("/etc/kamado/kamado.toml")
ENV_PREFIX = "KAMADO_"


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; a directory this user may not enter is a ConfigError."""
    try:
        return path.is_file()
    except OSError as e:
        from worker.permissions import permission_fix

        raise ConfigError(f"config file {permission_fix(path, e)}") from e


def find_config(explicit: Path | None = None) -> Path | None:
    """The config file to read: --config, then KAMADO_CONFIG, then the user's, then /etc."""
    if explicit is not None:
        if not _is_file(explicit):
            raise ConfigError(f"config file {explicit}: not found")
        return explicit
    env = os.environ.get(CONFIG_ENV, "")
    if env:
        path = Path(env).expanduser()
        if not _is_file(path):
            raise ConfigError(f"config file {path} (from {CONFIG_ENV}): not found")
        return path
    for candidate in (USER_CONFIG.expanduser(), SYSTEM_CONFIG):
        if _is_file(candidate):
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file, naming the file and line on a syntax error."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: {e}") from e
    except OSError as e:
        from worker.permissions import permission_fix

        raise ConfigError(f"config file {permission_fix(path, e)}") from e


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


def load_env_file(path: Path) -> dict[str, str]:
    """Read an env file (``KEY=value`` lines, as systemd's EnvironmentFile) into this process.

    Its values override the process's own, as the units see only the file's. Returns
    the pairs read; an unreadable file is a ConfigError naming it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        from worker.permissions import permission_fix

        raise ConfigError(f"env file {permission_fix(path, e)}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"env file {path}: not UTF-8 text ({e.reason})") from e
    pairs = parse_env(text)
    os.environ.update(pairs)
    return pairs


def kamado_environment() -> dict[str, str]:
    """The KAMADO_* variables (any case, as the settings read them) and HOME, sorted."""
    picked = {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    picked["HOME"] = os.environ.get("HOME", "")
    return dict(sorted(picked.items()))


def code_stamp() -> int:
    """The newest modification time of worker/'s modules, subpackages too (changes on upgrade)."""
    newest = 0
    for folder, dirs, files in os.walk(Path(__file__).parents[1]):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # the hook's path: stat only sources
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, (Path(folder) / name).stat().st_mtime_ns)
    return newest
