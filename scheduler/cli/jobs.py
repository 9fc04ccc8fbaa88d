"""`kamado status`, `watch`, `cancel`, `retry` and `workers`: reading and steering jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from scheduler.cli.job_table import jobs_table, live_words, presence_tables
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
from worker.errors import BadInputError, KamadoError

if TYPE_CHECKING:
    from scheduler.delivery.deliverer import Deliverer
    from worker.jobs import JobState
    from worker.settings.model import Settings

JobArg = Annotated[str, typer.Argument(help="a job id, or a unique prefix of one")]


def _connect(settings: Settings) -> Deliverer:
    from scheduler.delivery.deliverer import Deliverer

    return Deliverer(settings)


def _states(values: list[str] | None) -> list[JobState]:
    from worker.jobs import JobState

    try:
        return [JobState(v) for v in values or []]
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise BadInputError(f"--state {values}: unknown state (known: {known})") from None


def _show_one(data: dict[str, Any]) -> None:
    live = data.get("live")
    for key in ("id", "state", "waiting", "live", "source", "output", "profile", "priority",
                "queue", "attempts", "worker", "backend", "progress", "error", "flags",
                "size_bytes", "duration_s", "encode_s", "realtime", "epgstation_video_file_id",
                "created_at", "queued_at"):  # fmt: skip
        value = data.get(key)
        if key == "live" and live:  # under its own label: "live: 3.2 s behind"
            value = live_words(live, data["state"]).removeprefix("live: ").removeprefix("live, ")
        if value not in (None, "", []):
            console.print(f"[bold]{key}[/]: ", end="")
            console.print(str(value), markup=False)
    history = data.get("history") or []
    if history:
        table = Table(title="attempts")
        for column in ("#", "worker", "started", "ended", "outcome", "backend", "error"):
            table.add_column(column)
        for attempt in history:
            # Text, not markup: an error may quote [staging.locations.NAME] or a file name.
            table.add_row(
                str(attempt["number"]), Text(attempt["worker"]), attempt["started_at"][:19],
                (attempt["ended_at"] or "")[:19], attempt["outcome"],
                Text(attempt["backend"] or ""), Text(attempt["error"] or ""),
            )  # fmt: skip
        console.print(table)


def status(
    job: Annotated[str | None, typer.Argument(help="one job (id or unique prefix)")] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", "-s", help="only jobs in this state")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many jobs")] = 100,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The job table, or one job with every attempt and its error."""
    from scheduler import control as jobs
    from scheduler.unserved import unserved_queues

    settings = settings_or_exit(config)
    try:
        wanted = _states(state)
        deliverer = _connect(settings)
        try:
            if job is not None:
                job_id = jobs.resolve(deliverer.registry, deliverer.state, job)
                data = jobs.detail(deliverer.registry, deliverer.state, job_id)
                if data["state"] == "queued" and data["queue"]:
                    # One job: the words every view uses, then the backlog and the fix
                    # when nobody serves its queue.
                    waits = unserved_queues(deliverer.registry, deliverer.state, [data["queue"]])
                    if waits:
                        data["waiting"] = (
                            f"{data['waiting']} ({waits[0].waiting} job(s) wait in "
                            f"{waits[0].queue}); {waits[0].fix}"
                        )
            else:
                rows = jobs.listing(deliverer.registry, deliverer.state, states=wanted, limit=limit)
                waits = unserved_queues(deliverer.registry, deliverer.state)
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
    if job is not None:
        print_json(data) if as_json else _show_one(data)
    elif as_json:
        print_json(rows)
    else:
        console.print(jobs_table(rows, width=console.width))
        for item in waits:
            console.print(Text.assemble(("waiting: ", "yellow"), item.line()), soft_wrap=True)


def cancel(job: JobArg, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Cancel a job: at once when it waits, else its running attempt stops ffmpeg."""
    from scheduler import control as jobs

    settings = settings_or_exit(config)
    try:
        deliverer = _connect(settings)
        try:
            job_id = jobs.resolve(deliverer.registry, deliverer.state, job)
            answer = jobs.cancel(deliverer.registry, deliverer.state, job_id, app=deliverer.app)
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
    if as_json:
        print_json({"id": job_id, "result": answer})
    ok = answer in ("cancelled", "cancelling")
    if not as_json:
        message = {
            "cancelled": "cancelled",
            "cancelling": "cancel requested; the running attempt stops its encode",
        }.get(answer, f"not cancelled: the job is already {answer}")
        (console if ok else err_console).print(f"job {job_id}: {message}", markup=False)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def retry(
    job: JobArg,
    force: Annotated[bool, typer.Option(help="encode a done job again")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed, cancelled or held job again (a fresh set of attempts)."""
    from scheduler import control as jobs

    settings = settings_or_exit(config)
    try:
        deliverer = _connect(settings)
        try:
            job_id = jobs.resolve(deliverer.registry, deliverer.state, job)
            queue = jobs.retry(deliverer, job_id, force=force)
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
    if as_json:
        print_json({"id": job_id, "queue": queue})
    else:
        console.print(f"job {job_id}: queued again on {queue}", markup=False)


def workers_cmd(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Each worker: its queues, proven backends and measured speed, heartbeat age; host agents."""
    from scheduler import control as jobs

    settings = settings_or_exit(config)
    try:
        deliverer = _connect(settings)
        try:
            data = jobs.presence(deliverer)
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
    if as_json:
        print_json(data)
        return
    if not data["workers"] and not data["hosts"]:
        console.print("no worker or host agent has a live heartbeat")
        return
    for table in presence_tables(data):
        console.print(table)


def watch(
    interval: Annotated[
        float, typer.Option(min=0.2, max=60, help="seconds between refreshes")
    ] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="draw one frame and exit")] = False,
    config: ConfigOption = None,
) -> None:
    """A live view: running jobs with progress bars, waiting jobs, worker and VM health."""
    from scheduler.cli.watch import run_watch

    settings = settings_or_exit(config)
    try:
        deliverer = _connect(settings)
        try:
            run_watch(deliverer, interval=interval, once=once)
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
