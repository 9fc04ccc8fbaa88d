"""What a recorder hook needs of the config, validated once and then taken from a cache.

Validating the whole config (pydantic-settings and every role's section) costs more than
a recorder can wait for a hook. The hook therefore validates it with the real
:func:`worker.settings.model.load_settings` the first time, and whenever the config file, the
KAMADO_* variables or kamado itself changed since; in between it reads the few values it
needs (state and spool directories, whether a broker is set) from a small cache file in
``$XDG_CACHE_HOME/kamado`` (``~/.cache/kamado``). A cache that cannot be written only
makes every hook take the slow way; it never skips the validation.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

from pydantic_core import SchemaValidator, ValidationError, to_json
from pydantic_core import core_schema as cs

from worker.settings.file import code_stamp, find_config, kamado_environment


class HookConfig(NamedTuple):
    """The values a hook uses, taken from the validated settings."""

    config: str | None
    state_dir: Path
    spool_dir: Path
    broker: bool


# The cache file, checked like any input (pydantic's core validator, see recorder_input).
CACHED = SchemaValidator(
    cs.typed_dict_schema(
        {
            "stamp": cs.typed_dict_field(cs.str_schema()),
            "values": cs.typed_dict_field(
                cs.typed_dict_schema(
                    {
                        "config": cs.typed_dict_field(cs.nullable_schema(cs.str_schema())),
                        "state_dir": cs.typed_dict_field(cs.str_schema(min_length=1)),
                        "spool_dir": cs.typed_dict_field(cs.str_schema(min_length=1)),
                        "broker": cs.typed_dict_field(cs.bool_schema()),
                    },
                    extra_behavior="forbid",
                )
            ),
        },
        extra_behavior="forbid",
    )
)


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
    from worker.settings.model import load_settings, spool_dir

    settings = load_settings(path)
    return HookConfig(
        config=str(path) if path else None,
        state_dir=settings.state_dir,
        spool_dir=spool_dir(settings),
        broker=settings.broker_url is not None,
    )


def _store(file: Path, stamp: str, values: HookConfig) -> None:
    data = {"stamp": stamp, "values": {**values._asdict(), "state_dir": str(values.state_dir),
                                       "spool_dir": str(values.spool_dir)}}  # fmt: skip
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temp = file.with_name(f".{file.name}.{os.urandom(4).hex()}")
        temp.write_bytes(to_json(CACHED.validate_python(data)))
        temp.replace(file)
    except OSError:
        pass  # no cache: the next hook validates again


def _cached(file: Path, stamp: str) -> HookConfig | None:
    try:
        data = CACHED.validate_json(file.read_bytes())
    except (OSError, ValidationError):
        return None
    if data["stamp"] != stamp:
        return None
    values = data["values"]
    return HookConfig(
        config=values["config"],
        state_dir=Path(values["state_dir"]),
        spool_dir=Path(values["spool_dir"]),
        broker=values["broker"],
    )


def hook_config(explicit: Path | None = None) -> HookConfig:
    """The hook's config values; a ConfigError when the config is invalid."""
    path = find_config(explicit)
    stamp = _stamp(path)
    file = _cache_file(path)
    cached = _cached(file, stamp)
    if cached is not None:
        return cached
    values = _validated(path)
    _store(file, stamp, values)
    return values
