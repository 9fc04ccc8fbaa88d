"""`kamado enqueue PATH...`: submit a backlog of recordings, with progress and a summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

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
from worker.errors import BadInputError, BrokerError, KamadoError, OutputRefused

if TYPE_CHECKING:
    from scheduler.backlog import Scan
    from scheduler.delivery.deliverer import Deliverer
    from scheduler.submission import Submission
    from worker.settings.model import Settings

PRIORITY_NAMES = {"urgent": 0, "high": 2, "normal": 5, "low": 7, "idle": 9}
CHUNK = 500


def parse_priority(text: str | None, default: int) -> int:
    """A priority from a name (urgent, high, normal, low, idle) or a digit 0-9 (0 is first)."""
    if text is None:
        return default
    value = text.strip().lower()
    if value in PRIORITY_NAMES:
        return PRIORITY_NAMES[value]
    if value.isdigit() and 0 <= int(value) <= 9:
        return int(value)
    names = ", ".join(PRIORITY_NAMES)
    raise BadInputError(f"--priority {text!r}: use {names} or a number 0-9 (0 is most urgent)")


def _prepare(
    settings: Settings, scan: Scan, profile: str | None, priority: int, force: bool
) -> list[Submission]:
    from scheduler.submission import prepare

    subs: dict[str, Submission] = {}  # one recording named twice (a symlinked dir): one job
    for found in scan.found:
        sub = prepare(
            settings, str(found.path), origin="enqueue", profile=profile,
            priority=priority, force=force, size=found.size,
        )  # fmt: skip
        if sub is not None:
            subs.setdefault(sub.job.id, sub)
    return list(subs.values())


@dataclass
class Sent:
    """What submitting did: queued and known ids, outputs renamed, jobs refused, an error."""

    queued: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    error: str = ""


def _submit(deliverer: Deliverer, subs: list[Submission], show: bool) -> Sent:
    """Submit in order with a progress bar; a job the output contract refuses is skipped."""
    sent = Sent()
    cluster = deliverer.cluster()
    columns = (TextColumn("enqueue"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=not show, transient=True) as bar:
        task = bar.add_task("enqueue", total=len(subs))
        try:
            for start in range(0, len(subs), CHUNK):
                chunk = subs[start : start + CHUNK]
                for sub in chunk:
                    bar.advance(task)
                    try:
                        done = deliverer.submit(sub, cluster, note=False)
                    except (OutputRefused, BadInputError) as e:
                        sent.refused.append({"path": sub.recorder_path, "reason": str(e)})
                        continue
                    (sent.known if done.outcome == "exists" else sent.queued).append(sub.job.id)
                    if done.job.output != sub.job.output:
                        sent.renamed.append({"source": sub.job.source, "output": done.job.output})
                deliverer.state.note(chunk)
        except BrokerError as e:
            sent.error = str(e)
    return sent


def _summary(data: dict[str, Any]) -> None:
    verb = "would queue" if data["dry_run"] else "queued"
    console.print(
        f"{verb} {len(data['queued'])}, already known {len(data['known'])}, "
        f"skipped {len(data['skipped'])}",
        markup=False,
    )
    for item in data["renamed"]:
        console.print(f"renamed: {item['source']} → {item['output']} (name taken)", markup=False)
    reasons = Counter(item["reason"] for item in data["skipped"])
    if reasons:
        table = Table(title="skipped")
        table.add_column("reason")
        table.add_column("files", justify="right")
        table.add_column("example")
        for reason, count in reasons.most_common():
            example = next(i["path"] for i in data["skipped"] if i["reason"] == reason)
            table.add_row(reason, str(count), example)
        console.print(table)


def enqueue(
    paths: Annotated[
        list[str], typer.Argument(help="files, directories or glob patterns", show_default=False)
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="descend into directories")
    ] = False,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="instead of the rules")
    ] = None,
    priority: Annotated[
        str | None, typer.Option(help="urgent, high, normal, low, idle or 0-9 (default: low)")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="only files last written before, e.g. 7d")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="show, submit nothing")] = False,
    force: Annotated[bool, typer.Option(help="a new attempt of jobs already finished")] = False,
    settle: Annotated[
        float | None, typer.Option(min=0, max=60, help="seconds between the two size checks")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Submit recordings (a backlog): skips what is not a finished recording or already known."""
    from scheduler.backlog import expand, parse_age, scan
    from scheduler.delivery.deliverer import Deliverer
    from worker.broker.address import broker_url
    from worker.profiles import get_profile

    settings = settings_or_exit(config)
    try:
        broker_url(settings, embedded=False)
        level = parse_priority(priority, settings.scheduler.backlog_priority)
        age = parse_age(older_than) if older_than else None
        if profile is not None:
            get_profile(profile, settings.profiles)
        files = expand(paths, recursive=recursive)
        found = scan(files, settings.scheduler, older_than=age, settle=settle)
        skipped = [{"path": p, "reason": r} for p, r in found.skipped]
        if not found.found:
            reasons = "; ".join(f"{p}: {r}" for p, r in found.skipped[:3])
            raise BadInputError(
                f"no recordings to enqueue in {', '.join(paths)}"
                + (f" ({len(found.skipped)} files skipped: {reasons}…)" if reasons else "")
            )
        subs = _prepare(settings, found, profile, level, force)
        deliverer = Deliverer(settings)
        try:
            known_ids = set() if force else deliverer.state.known([s.job.id for s in subs])
            fresh = [s for s in subs if s.job.id not in known_ids]
            if dry_run:
                sent = Sent(queued=[s.job.id for s in fresh], known=sorted(known_ids))
            else:
                sent = _submit(deliverer, fresh, show=not as_json)
                sent.known = sorted(known_ids) + sent.known
        finally:
            deliverer.close()
    except KamadoError as e:
        fail(e)
    queued, known, error = sent.queued, sent.known, sent.error
    data = {"dry_run": dry_run, "queued": queued, "known": known,
            "skipped": skipped + sent.refused, "renamed": sent.renamed,
            "error": error or None}  # fmt: skip
    if dry_run:
        data["jobs"] = [
            {
                "id": s.job.id,
                "source": s.job.source,
                "profile": s.job.profile,
                "priority": s.job.priority,
            }
            for s in fresh
        ]
    print_json(data) if as_json else _summary(data)
    if error:
        err_console.print(
            f"[red]error:[/] stopped after {len(queued)} jobs: {error}; run the same command "
            "again when the broker is back (known jobs are skipped)",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_FAILED)
