"""The live view behind `kamado watch`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from scheduler import jobs
from scheduler.cli_jobs import jobs_table, presence, presence_tables
from worker.cli.common import console
from worker.jobs import JobState

if TYPE_CHECKING:
    from scheduler.deliver import Deliverer

ACTIVE = [JobState.STAGING, JobState.ENCODING, JobState.VERIFYING]


def frame(box: Deliverer) -> Group:
    """One frame: running jobs with bars, then waiting jobs, workers and hosts."""
    rows = jobs.listing(box.registry, box.state, states=[], limit=500)
    running = [r for r in rows if r["state"] in {s.value for s in ACTIVE}]
    waiting = [r for r in rows if r["state"] in ("queued", "held")]
    bars = Table(title=f"running ({len(running)})", expand=True)
    for column in ("job", "source", "backend", "progress", "%", "fps", "ETA"):
        bars.add_column(column)
    for item in running:
        percent = item["progress"] or 0.0
        bars.add_row(
            item["id"][:12], item["source"].rsplit("/", 1)[-1], item["backend"] or "",
            ProgressBar(total=100, completed=percent, width=30), f"{percent:.0f}",
            f"{item['fps']:.0f}" if item["fps"] else "",
            f"{item['eta_s']:.0f}s" if item["eta_s"] is not None else "",
        )  # fmt: skip
    parts = [bars, jobs_table(waiting[:20], title=f"waiting ({len(waiting)})")]
    parts.extend(presence_tables(presence(box)))
    return Group(*parts)


def run_watch(box: Deliverer, *, interval: float, once: bool) -> None:
    """Redraw until interrupted (or once)."""
    if once:
        console.print(frame(box))
        return
    try:
        with Live(frame(box), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(box))
    except KeyboardInterrupt:
        return
