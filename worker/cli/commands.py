"""The worker role's commands: config, profiles, worker, encode, demo."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the worker role's commands to the root app."""
    from worker.cli import config_cmd, encode_cmd, profiles_cmd, worker_cmd

    app.add_typer(config_cmd.app, name="config")
    app.add_typer(profiles_cmd.app, name="profiles")
    app.command("worker")(worker_cmd.worker)
    app.command("encode")(encode_cmd.encode)
    app.command("demo")(encode_cmd.demo)
