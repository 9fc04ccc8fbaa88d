"""deploy/kamado.example.toml loads, and documents every key of every section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from worker.settings.model import Settings, load_settings

EXAMPLE = Path(__file__).parents[3] / "deploy" / "kamado.example.toml"


def keys_of(model: type[BaseModel], prefix: str = "") -> list[tuple[str, bool]]:
    """Every settable key, dotted, with whether it is a section; into nested sections."""
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        found.append((prefix + name, section))
        if section:
            assert isinstance(annotation, type)
            found += keys_of(annotation, f"{prefix}{name}.")
    return found


def test_the_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KAMADO_"):
            monkeypatch.delenv(key)
    settings = load_settings(EXAMPLE)
    assert settings.encode.vaapi_driver == "i965"
    assert "anime-vaapi" in settings.profiles


def test_the_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = []
    for dotted, section in keys_of(Settings):
        name = dotted.rsplit(".", 1)[-1]
        # A key is `name = ...`; a section `[dotted]`; a table list `[[dotted]]`; a map of
        # tables (profiles, locations) `[dotted.<name>]` — commented examples count.
        header = rf"^#?\s*\[\[?{re.escape(dotted)}(\]|\.)"
        pattern = header if section else rf"^#?\s*{re.escape(name)}\s*=|{header}"
        if not re.search(pattern, text, re.MULTILINE):
            missing.append(dotted)
    assert missing == []
