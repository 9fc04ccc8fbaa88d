"""`kamado profiles`: the profiles, and the exact ffmpeg argv each backend would run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from worker.captions import plan_for, sidecar_path
from worker.cli.common import ConfigOption, JsonOption, console, fail, print_json, settings_or_exit
from worker.encode.argv import build_command
from worker.encode.audio import read_layouts
from worker.encode.ffprobe import read_media
from worker.errors import BadInputError, KamadoError, SourceError
from worker.profiles import Backend, all_profiles, get_profile

app = typer.Typer(help="List encode profiles and show their ffmpeg commands.")


@app.callback(invoke_without_command=True)
def list_profiles(
    ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """List every profile: accepted backends in order, the queue it goes to, its settings."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit(config)
    profiles = all_profiles(settings.profiles)
    if as_json:
        print_json(
            {
                name: {
                    **p.model_dump(mode="json"),
                    "queue": p.queue,
                    "hardware_only": p.hardware_only,
                }
                for name, p in profiles.items()
            }
        )
        return
    table = Table(title="encode profiles")
    for column in ("name", "backends", "queue", "quality", "height", "description"):
        table.add_column(column)
    for name, p in sorted(profiles.items()):
        table.add_row(
            name,
            " → ".join(b.value for b in p.backends),
            p.queue,
            str(p.quality),
            str(p.height),
            p.description,
        )
    console.print(table)


@app.command("argv")
def argv(
    name: Annotated[str, typer.Argument(help="profile name")],
    backend: Annotated[Backend, typer.Option("--backend", "-b")],
    input_file: Annotated[
        Path, typer.Option("--input", "-i", help="a real recording (read with ffprobe)")
    ],
    output: Annotated[Path, typer.Option("--output", "-o")],
    config: ConfigOption = None,
) -> None:
    """Print the exact ffmpeg argv (a JSON list) for a profile, backend and input."""
    settings = settings_or_exit(config)
    try:
        profile = get_profile(name, settings.profiles)
        if backend not in profile.backends:
            accepted = ", ".join(b.value for b in profile.backends)
            raise BadInputError(
                f"profile {name} does not accept {backend.value} (it accepts {accepted})"
            )
        info = read_media(settings.encode.ffprobe, input_file, service_id=profile.service_id)
        # What an encode would see: the AAC frames read where the profile needs them.
        info = read_layouts(settings.encode.ffmpeg, input_file, info, profile.audio)
        captions = plan_for(
            profile.captions, info.captions, settings.encode.ffmpeg,
            lambda fmt: Path(sidecar_path(str(output), fmt)),
        )  # fmt: skip
        command = build_command(
            backend, profile, info, input_file, output,
            ffmpeg=settings.encode.ffmpeg,
            render_node=settings.encode.render_node,
            vaapi_driver=settings.encode.vaapi_driver,
            captions=captions,
        )  # fmt: skip
    except KamadoError as e:
        if isinstance(e, SourceError):
            fail(BadInputError(f"--input {e}"))
        fail(e)
    print_json(command.argv)
