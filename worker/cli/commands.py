"""The worker role's commands: config, profiles, worker, encode, demo."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the worker role's commands to the root app."""
    from worker.cli import config_cmd

    app.add_typer(config_cmd.app, name="config")
