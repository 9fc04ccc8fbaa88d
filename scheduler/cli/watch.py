"""The live view behind `kamado watch`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from scheduler import control as jobs
from scheduler.cli.job_table import duration, jobs_table, name_of, presence_tables
from worker.cli.common import console
from worker.jobs import JobState

if TYPE_CHECKING:
    from scheduler.delivery.deliverer import Deliverer

ACTIVE = [JobState.STAGING, JobState.ENCODING, JobState.VERIFYING]
FINAL = {JobState.DONE.value, JobState.FAILED.value, JobState.CANCELLED.value}
RECENT = 8


def lag_cell(item: dict[str, Any]) -> str:
    """How far a live job is behind the recording it follows ("" for an ordinary job)."""
    live = item.get("live")
    if not live or live["phase"] not in ("recording", "finished"):
        return ""
    lag = live.get("lag_s")
    return f"{lag:.1f} s" if lag is not None else "live"


def running_table(running: list[dict[str, Any]]) -> Table:
    """Running jobs with a bar each: recording, worker, backend, %, fps, ETA, and a live
    job's lag behind the recording."""
    bars = Table(title=f"running ({len(running)})", expand=True)
    bars.add_column("job", no_wrap=True)
    bars.add_column("recording", overflow="fold", ratio=3)
    for column in ("worker", "backend"):
        bars.add_column(column, no_wrap=True)
    bars.add_column("progress", ratio=2)
    # Only with a live job among them: how far it is behind the recording it follows.
    lags = any(item.get("live") for item in running)
    for column in ("%", "fps", "ETA", *(("behind",) if lags else ())):
        bars.add_column(column, no_wrap=True, justify="right")
    for item in running:
        percent = item["progress"] or 0.0
        bars.add_row(
            item["id"][:8], Text(name_of(item["source"])), Text(item["worker_host"] or ""),
            item["backend"] or "", ProgressBar(total=100, completed=percent),
            f"{percent:.0f}", f"{item['fps']:.0f}" if item["fps"] else "",
            duration(item["eta_s"]), *((lag_cell(item),) if lags else ()),
        )  # fmt: skip
    return bars


def recent(rows: list[dict[str, Any]], limit: int = RECENT) -> list[dict[str, Any]]:
    """The jobs that ended last (done, failed, cancelled), newest first."""
    ended = [r for r in rows if r["state"] in FINAL]
    return sorted(ended, key=lambda r: r.get("updated_at") or "", reverse=True)[:limit]


def frame(deliverer: Deliverer, width: int | None = None) -> Group:
    """One frame: running jobs with bars, waiting jobs, recent results, workers and hosts."""
    width = width or console.width
    rows = jobs.listing(deliverer.registry, deliverer.state, states=[], limit=500)
    running = [r for r in rows if r["state"] in {s.value for s in ACTIVE}]
    waiting = [r for r in rows if r["state"] in ("queued", "held")]
    ended = recent(rows)
    parts: list[Any] = [
        running_table(running),
        jobs_table(waiting[:20], title=f"waiting ({len(waiting)})", width=width),
        jobs_table(ended, title=f"recent results (last {len(ended)})", width=width),
    ]
    parts.extend(presence_tables(jobs.presence(deliverer)))
    return Group(*parts)


def run_watch(deliverer: Deliverer, *, interval: float, once: bool) -> None:
    """Redraw until interrupted (or once)."""
    if once:
        console.print(frame(deliverer))
        return
    try:
        with Live(frame(deliverer), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(deliverer))
    except KeyboardInterrupt:
        return
