"""Commands with a quick path (``kamado.cli.quick`` entry points), found without importlib.metadata.

A recorder hook must return before Python has imported much: importing
``importlib.metadata`` (email parsing, zipfile, inspect, csv) alone costs about 40 ms of
CPU here, a quarter of the whole hook. Only kamado's own distribution is asked, so this
reads its ``entry_points.txt`` directly, found the way importlib.metadata finds it (the
first ``kamado-*.dist-info`` or ``kamado.egg-info`` along ``sys.path``); when it is not
there (an unusual install), importlib.metadata answers as before.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

GROUP = "kamado.cli.quick"
DISTRIBUTION = "kamado"

Quick = Callable[[list[str]], "int | None"]


def _metadata_dir() -> Path | None:
    for base in sys.path:
        try:
            with os.scandir(base or ".") as found:
                for item in found:
                    name = item.name.lower()
                    if name == f"{DISTRIBUTION}.egg-info" or (
                        name.startswith(f"{DISTRIBUTION}-") and name.endswith(".dist-info")
                    ):
                        return Path(item.path)
        except OSError:
            continue
    return None


def read_group(text: str, group: str) -> dict[str, str]:
    """The ``name = module:attr`` lines of one section of an entry_points.txt."""
    entries: dict[str, str] = {}
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, value = line.split("=", 1)
            entries[name.strip()] = value.strip()
    return entries


def quick_targets() -> dict[str, str]:
    """Command name → ``module:function`` of every quick path kamado has."""
    directory = _metadata_dir()
    if directory is not None:
        try:
            return read_group((directory / "entry_points.txt").read_text("utf-8"), GROUP)
        except OSError:
            pass
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load(target: str) -> Quick:
    """The function a ``module:function`` target names."""
    module, _, attr = target.partition(":")
    handler: Quick = getattr(importlib.import_module(module.strip()), attr.strip())
    return handler
