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


def register_onebox(app: typer.Typer) -> None:
    """Only `kamado encode` and `kamado demo`: a cold encode must not pay for importing the
    worker service, the other roles and their commands (about 0.15 s)."""
    from worker.cli import encode_cmd

    app.command("encode")(encode_cmd.encode)
    app.command("demo")(encode_cmd.demo)


def register_worker(app: typer.Typer) -> None:
    """Only `kamado worker`: its start-up is time before a one-box encode's first job."""
    from worker.cli import worker_cmd

    app.command("worker")(worker_cmd.worker)

    @app.callback()
    def kamado() -> None:
        """Turn TV recordings into verified H.264 files on an Intel iGPU, through a queue."""
        # A callback keeps `kamado worker` a subcommand: typer runs a one-command app as
        # that command itself, and would refuse the word "worker".
