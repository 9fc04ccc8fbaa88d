"""`kamado encode` and `kamado demo`: the one-box pipeline with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from worker import onebox
from worker.backends.proof_reuse import last_start
from worker.captions import CaptionStatus, caption_line
from worker.cli.common import (
    EXIT_FAILED,
    ConfigOption,
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    settings_or_exit,
)
from worker.encode.ffprobe import parse_media, run_ffprobe
from worker.encode.output_contract import inspect_submission
from worker.encode.sample import make_sample
from worker.errors import BadInputError, KamadoError
from worker.jobs import Job, JobState
from worker.profiles import get_profile
from worker.settings.model import Settings

ReprobeOption = Annotated[
    bool, typer.Option("--reprobe", help="prove the encoder backends again even if unchanged")
]


def _detail(meta: dict[str, Any], state: str) -> str:
    parts = [str(meta.get("state") or state.lower())]
    if meta.get("backend"):
        parts.append(str(meta["backend"]))
    if meta.get("fps"):
        parts.append(f"{meta['fps']:.0f} fps")
    if meta.get("eta_s") is not None and meta.get("state") == "encoding":
        parts.append(f"ETA {meta['eta_s']:.0f}s")
    return " · ".join(parts)


class Bars:
    """A rich progress bar per job (to stderr, so --json output stays clean)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=err_console,
            disable=not enabled,
        )
        self.ids: dict[str, TaskID] = {}

    def update(self, item: onebox.Tracked) -> None:
        """Show the latest state of one job."""
        if item.job.id not in self.ids:
            name = Path(item.job.source).name
            self.ids[item.job.id] = self.progress.add_task(name, total=100, detail="queued")
        percent = float(item.meta.get("percent") or 0.0)
        if item.state is JobState.DONE:
            percent = 100.0
        self.progress.update(
            self.ids[item.job.id], completed=percent, detail=_detail(item.meta, item.state.value)
        )


def run_jobs(
    settings: Settings,
    jobs: list[Job],
    *,
    config: Path | None,
    force_embedded: bool,
    show_progress: bool,
    force: bool = False,
    output_dir: Path | None = None,
    concurrency: int | None = None,
    reprobe: bool = False,
) -> list[onebox.Outcome]:
    """Run jobs through the queue (embedded broker + local worker when none is configured)."""
    bars = Bars(show_progress)

    def status(message: str) -> None:
        if show_progress:
            err_console.print(f"[dim]{message}…[/]")

    with (
        onebox.session(
            settings,
            config=config,
            force_embedded=force_embedded,
            on_status=status,
            output_dir=output_dir,
            concurrency=concurrency,
            reprobe=reprobe,
        ) as box,
        bars.progress,
    ):
        outcomes = onebox.encode_files(box, jobs, bars.update, force=force)
    return outcomes


def outcome_json(outcome: onebox.Outcome) -> dict[str, Any]:
    """One finished job as JSON."""
    return {
        "id": outcome.job.id,
        "source": outcome.job.source,
        "output": outcome.result.output if outcome.result else outcome.job.output,
        "profile": outcome.job.profile,
        "state": outcome.state.value,
        "error": outcome.error,
        "result": outcome.result.model_dump(mode="json") if outcome.result else None,
    }


def report(outcomes: list[onebox.Outcome]) -> None:
    """Print each job's end: where the verified file is, or why it failed."""
    for outcome in outcomes:
        name = Path(outcome.job.source).name
        if outcome.result:
            r = outcome.result
            console.print(
                f"[green]done[/] {name} → {r.output} ({r.backend}, {r.width}x{r.height}, "
                f"{r.duration_s:.1f} s, {r.size_bytes / 1e6:.1f} MB, "
                f"{r.average_fps or 0:.0f} fps)",
                highlight=False,
            )
            if r.captions is not None and r.captions.status is not CaptionStatus.NONE:
                console.print(f"  {caption_line(r.captions)}", markup=False, highlight=False)
        else:
            console.print(f"[red]{outcome.state.value}[/] {name}: {outcome.error}", highlight=False)


def encode(
    files: Annotated[list[Path], typer.Argument(help="recordings to encode", show_default=False)],
    profile: Annotated[str | None, typer.Option("--profile", "-p")] = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", file_okay=False)] = None,
    priority: Annotated[int, typer.Option(min=0, max=9, help="0 is most urgent")] = 5,
    force: Annotated[bool, typer.Option(help="encode again even if already done")] = False,
    jobs_n: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=16,
            help="encodes at once on the local worker (default: worker.concurrency)",
        ),
    ] = None,
    reprobe: ReprobeOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Encode these files through the queue and wait; exit 0 only if every one is verified."""
    settings = settings_or_exit(config)
    name = profile or settings.encode.default_profile
    try:
        get_profile(name, settings.profiles)
        out_dir = output_dir or settings.encode.output_dir
        if out_dir is not None and not out_dir.expanduser().is_dir():
            raise BadInputError(f"--output-dir {out_dir}: no such directory")
        for path in files:
            if not path.exists():
                raise BadInputError(f"{path}: no such file")
            if not path.is_file():
                raise BadInputError(f"{path}: not a regular file")
        template = settings.encode.output_name
        jobs = [
            Job.create(str(p), name, output_dir=out_dir, priority=priority, output_name=template)
            for p in files
        ]
        for job in jobs:  # before the broker and a worker are started for nothing
            inspect_submission(settings, job)
        outcomes = run_jobs(
            settings,
            jobs,
            config=config,
            force_embedded=False,
            show_progress=not as_json,
            force=force,
            output_dir=out_dir,
            concurrency=jobs_n,
            reprobe=reprobe,
        )
    except KamadoError as e:
        fail(e)
    if as_json:
        print_json([outcome_json(o) for o in outcomes])
    else:
        report(outcomes)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def summary(ffprobe: str, path: Path) -> dict[str, Any]:
    """The ffprobe facts a person checks in an output: streams, size, duration."""
    data = run_ffprobe(ffprobe, path)
    info = parse_media(path, data)
    streams = [
        {
            "type": s.get("codec_type"),
            "codec": s.get("codec_name"),
            **({"size": f"{s.get('width')}x{s.get('height')}"} if s.get("width") else {}),
            **({"channels": s.get("channels")} if s.get("channels") else {}),
        }
        for s in data.get("streams", [])
    ]
    return {
        "file": str(path),
        "format": info.format_name,
        "duration_s": info.duration_s,
        "size_bytes": info.size_bytes,
        "streams": streams,
    }


def demo(
    seconds: Annotated[float, typer.Option(min=1, max=600, help="length of the clip")] = 10.0,
    reprobe: ReprobeOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    topology: Annotated[
        bool,
        typer.Option(
            "--topology",
            help="the three-box tour: recorder, host agent and a booted guest VM on this "
            "machine (root, QEMU, libvirt's QEMU driver and a kernel package needed)",
        ),
    ] = False,
) -> None:
    """Generated 1080i recording → embedded broker → worker → verified MP4."""
    if topology:
        tour(as_json)
        return
    settings = settings_or_exit(config)
    demo_dir = settings.state_dir / "demo"
    try:
        if not as_json:
            err_console.print(f"[dim]generating a {seconds:g} s 1080i MPEG-2 broadcast TS…[/]")
        source = make_sample(demo_dir / "demo-1080i.ts", seconds=seconds,
                             ffmpeg=settings.encode.ffmpeg)  # fmt: skip
        (demo_dir / "demo-1080i.mp4").unlink(missing_ok=True)
        job = Job.create(str(source), settings.encode.default_profile, output_dir=demo_dir)
        outcomes = run_jobs(
            settings,
            [job],
            config=config,
            force_embedded=True,
            show_progress=not as_json,
            force=True,
            output_dir=demo_dir,
            reprobe=reprobe,
        )
        outcome = outcomes[0]
        probe = last_start(settings) if settings.worker.backends == "auto" else None
        facts = summary(settings.encode.ffprobe, Path(job.output)) if outcome.ok else None
    except KamadoError as e:
        fail(e)
    if as_json:
        reuse = {"reused": probe[0], "reason": probe[1]} if probe else None
        print_json({**outcome_json(outcome), "ffprobe": facts, "probe": reuse})
    else:
        report(outcomes)
        if probe is not None:
            words = "reused" if probe[0] else "redone"
            console.print(f"encoder probe {words}: {probe[1]}", markup=False, highlight=False)
        if facts:
            console.print("ffprobe summary:", highlight=False)
            console.print(json.dumps(facts, indent=2, ensure_ascii=False), markup=False)
    if not outcome.ok:
        raise typer.Exit(EXIT_FAILED)


def tour(as_json: bool) -> None:
    """`kamado demo --topology`: both acts of the three-box tour, each step as it happens."""
    from worker.tour.demo import run_tour

    if not as_json:
        err_console.print(
            "[dim]the three-box tour: a recorder and a KVM host (network namespaces), a guest "
            "VM under QEMU; three to four minutes on an emulated CPU[/]"
        )
    try:
        result = run_tour(console, as_json=as_json)
    except (KamadoError, RuntimeError) as e:
        fail(e if isinstance(e, KamadoError) else KamadoError(str(e)))
    if as_json:
        print_json(result)
        return
    for act in result["acts"]:
        console.print(
            f"act {act['act']}: job {act['job_id']} {act['state']} by {act['worker']} on "
            f"{act['backend']} (attempts: {', '.join(act['attempts'])}); hook → output "
            f"verified {act['hook_to_verified_s']} s, VM start → first heartbeat "
            f"{act['boot_to_first_heartbeat_s']} s",
            markup=False,
            highlight=False,
        )
