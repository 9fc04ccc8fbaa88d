"""What a recorder hook needs of the config, validated once and then taken from a cache.

Validating the whole config (pydantic-settings and every role's section) costs more than
a recorder can wait for a hook. The hook therefore validates it with the real
:func:`worker.settings.load_settings` the first time, and whenever the config file, the
KAMADO_* variables or kamado itself changed since; in between it reads the few values it
needs (state and spool directories, whether a broker is set) from a small cache file in
``$XDG_CACHE_HOME/kamado`` (``~/.cache/kamado``). A cache that cannot be written only
makes every hook take the slow way; it never skips the validation.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from worker.config_file import code_stamp, find_config, kamado_environment


class HookConfig(BaseModel):
    """The values a hook uses, taken from the validated settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: str | None
    state_dir: Path
    spool_dir: Path
    broker: bool


class _Cached(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stamp: str
    values: HookConfig


def cache_dir() -> Path:
    """Where the validated hook config is cached."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "kamado"


def _stamp(path: Path | None) -> str:
    """What must be unchanged for the cached values to hold."""
    parts: dict[str, object] = {"config": str(path) if path else None}
    if path is not None:
        st = path.stat()
        parts["file"] = [st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev]
    parts["env"] = kamado_environment()
    parts["code"] = code_stamp()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cache_file(path: Path | None) -> Path:
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16] if path else "none"
    return cache_dir() / f"hook-config-{key}.json"


def _validated(path: Path | None) -> HookConfig:
    from scheduler.spool import spool_dir
    from worker.settings import load_settings

    settings = load_settings(path)
    return HookConfig(
        config=str(path) if path else None,
        state_dir=settings.state_dir,
        spool_dir=spool_dir(settings),
        broker=settings.broker_url is not None,
    )


def _store(file: Path, cached: _Cached) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temp = file.with_name(f".{file.name}.{secrets.token_hex(4)}")
        temp.write_text(cached.model_dump_json(), encoding="utf-8")
        temp.replace(file)
    except OSError:
        pass  # no cache: the next hook validates again


def hook_config(explicit: Path | None = None) -> HookConfig:
    """The hook's config values; a ConfigError when the config is invalid."""
    path = find_config(explicit)
    stamp = _stamp(path)
    file = _cache_file(path)
    try:
        cached = _Cached.model_validate_json(file.read_bytes())
        if cached.stamp == stamp:
            return cached.values
    except (OSError, ValidationError):
        pass
    values = _validated(path)
    _store(file, _Cached(stamp=stamp, values=values))
    return values
