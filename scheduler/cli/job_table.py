"""The job and worker tables of `kamado status`, `watch` and `workers`, fitted to the width.

The recording's name is what an admin looks for, so it is never cut: when the terminal
is narrow, the least telling columns go first (profile, priority, age, ...), and the
detail column (an error, why a job waits, what a done job produced) is shortened with
an ellipsis; `kamado status JOB` shows it whole. When even a short detail column does
not fit beside long names (80 columns), each row's detail follows the table as a line
of its own, under the job's id, so a failure's reason is never hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from worker.admin.task_view import size
from worker.backends.view import refused_word

COLOURS = {
    "done": "green", "failed": "red", "cancelled": "yellow", "held": "magenta",
    "queued": "cyan", "staging": "blue", "encoding": "blue", "verifying": "blue",
}  # fmt: skip
# Priority 0-9 (0 first) in the words `kamado enqueue --priority` takes.
PRIORITY_WORDS = {0: "urgent", 1: "urgent", 2: "high", 3: "high", 4: "high", 5: "normal",
                  6: "low", 7: "low", 8: "idle", 9: "idle"}  # fmt: skip
# What a rejected live job becomes once its attempt stops (worker/broker/live.py's after).
AFTER_WORDS = {"queue": "queued", "hold": "held", "cancel": "cancelled"}
MIN_DETAIL = 16
# Rich's default box: one edge, then padding, cell, padding and a rule per column.
EDGE, PER_COLUMN = 1, 3


def duration(seconds: float | None) -> str:
    """A compact duration: 45s, 12m, 3h05m, 2d."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m"
    if whole < 172800:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d"


def name_of(source: str) -> str:
    """The recording's file name from its path or URI."""
    return PurePosixPath(source).name


def priority_word(priority: int) -> str:
    """``urgent``, ``high``, ``normal``, ``low`` or ``idle``."""
    return PRIORITY_WORDS.get(priority, str(priority))


def live_words(live: dict[str, Any], state: str) -> str:
    """A live job's phase in words: who follows the recording and how far behind, or why
    it waits for the finish hook."""
    phase, reason, worker = live["phase"], live.get("reason") or "", live.get("worker") or ""
    lag = live.get("lag_s")
    behind = f"{lag:.1f} s behind" if lag is not None else "following the recording"
    if live.get("file_bytes"):
        behind += f" ({size(live.get('read_bytes'))} of {size(live['file_bytes'])} read)"
    if phase == "recording":
        if state == "queued":
            return f"live: sent to {worker}, not started yet"
        return f"live, {behind}"
    if phase == "finished":
        return f"live: recording ended, reading to its end, {behind}"
    if phase == "rejected":
        then = AFTER_WORDS.get(live.get("after") or "queue", "queued")
        return f"live: stopping ({reason}), then {then}"
    if phase == "waiting":
        return f"live: waiting for the finish hook ({reason})"
    if phase == "abandoned":
        return f"live attempt gave up ({reason}); waiting for the finish hook"
    return f"not live: {reason}" if reason else "not live"


def detail(item: dict[str, Any]) -> str:
    """What a row needs said: the error, why it waits, what a live job does, or what a
    done job produced."""
    state = item["state"]
    if state in ("failed", "cancelled"):
        return str(item.get("error") or state)
    live = item.get("live")
    if live and state != "done" and live["phase"] != "ordinary":
        return live_words(live, state)
    if state == "queued" and item.get("waiting"):
        return f"waiting: {item['waiting']}"
    if state == "done":
        parts = [size(item.get("size_bytes"))]
        if item.get("duration_s"):
            parts.append(f"{duration(item['duration_s'])} video")
        if item.get("realtime"):
            parts.append(f"{item['realtime']:.1f}× realtime")
        return " · ".join(p for p in parts if p)
    if item.get("cancel_requested"):
        return "cancel requested"
    return ""


@dataclass(frozen=True)
class Column:
    """One column: header, cell text, and when it may go (lower goes first; None stays)."""

    header: str
    cell: Callable[[dict[str, Any]], str]
    drop: int | None
    justify: str = "left"


def _state(item: dict[str, Any]) -> str:
    return str(item["state"]) + (" !" if item.get("flags") else "")


COLUMNS = (
    Column("id", lambda r: str(r["id"])[:8], None),
    Column("state", _state, None),
    Column("recording", lambda r: name_of(str(r["source"])), None),
    Column("profile", lambda r: str(r["profile"]), 1),
    Column("prio", lambda r: priority_word(int(r.get("priority", 5))), 2),
    Column("worker", lambda r: str(r.get("worker_host") or r.get("worker") or ""), 6),
    Column("backend", lambda r: str(r.get("backend") or ""), 4),
    Column(
        "%", lambda r: f"{r['progress']:.0f}" if r.get("progress") is not None else "", 7, "right"
    ),
    Column("fps", lambda r: f"{r['fps']:.0f}" if r.get("fps") else "", 5, "right"),
    Column("ETA", lambda r: duration(r.get("eta_s")), 3, "right"),
    Column("age", lambda r: duration(r.get("age_s")), 0, "right"),
    Column("detail", detail, 8),
)


def _width(column: Column, cells: list[str]) -> int:
    return max([cell_len(column.header), *(cell_len(c) for c in cells)])


def fit(rows: list[dict[str, Any]], width: int) -> tuple[list[Column], dict[str, int]]:
    """The columns that fit ``width`` (dropping the least telling first) and their widths."""
    cells = {c.header: [c.cell(r) for r in rows] for c in COLUMNS}
    widths = {c.header: _width(c, cells[c.header]) for c in COLUMNS}
    kept = [c for c in COLUMNS if c.header != "detail" or any(cells["detail"])]

    def needed(columns: list[Column]) -> int:
        fixed = sum(widths[c.header] for c in columns if c.header != "detail")
        flexible = MIN_DETAIL if any(c.header == "detail" for c in columns) else 0
        return EDGE + PER_COLUMN * len(columns) + fixed + min(flexible, widths["detail"])

    for column in sorted((c for c in kept if c.drop is not None), key=lambda c: c.drop or 0):
        if needed(kept) <= width:
            break
        kept.remove(column)
    if any(c.header == "detail" for c in kept):
        rest = width - needed([c for c in kept if c.header != "detail"]) - PER_COLUMN
        widths["detail"] = max(min(widths["detail"], rest), MIN_DETAIL)
    return kept, widths


def jobs_table(rows: list[dict[str, Any]], title: str = "jobs", width: int = 80) -> RenderableType:
    """Jobs as a table that fits ``width`` and always shows every recording's whole name
    (with each row's detail as a line after it when no detail column fits)."""
    columns, widths = fit(rows, width)
    # What the other columns leave: a longer name folds (whole) instead of being cropped.
    others = sum(widths[c.header] for c in columns if c.header not in ("recording", "detail"))
    detail_width = (
        widths["detail"] + PER_COLUMN if any(c.header == "detail" for c in columns) else 0
    )
    room = width - EDGE - PER_COLUMN * len([c for c in columns if c.header != "detail"])
    widths = {**widths, "recording": max(min(widths["recording"], room - others - detail_width), 1)}
    table = _table(rows, columns, widths, title)
    if any(c.header == "detail" for c in columns):
        return table
    notes = [(item, detail(item)) for item in rows]
    lines = [
        Text.assemble((str(item["id"])[:8], COLOURS.get(item["state"], "white")), " ", said)
        for item, said in notes
        if said
    ]
    return Group(table, *lines) if lines else table


def _table(
    rows: list[dict[str, Any]], columns: list[Column], widths: dict[str, int], title: str
) -> Table:
    table = Table(title=title)
    for column in columns:
        if column.header == "recording":
            table.add_column(column.header, overflow="fold", min_width=widths["recording"])
        elif column.header == "detail":
            table.add_column(column.header, no_wrap=True, overflow="ellipsis",
                             max_width=widths["detail"])  # fmt: skip
        else:
            table.add_column(column.header, no_wrap=True, justify=column.justify)  # type: ignore[arg-type]
    for item in rows:
        colour = COLOURS.get(item["state"], "white")
        cells: list[Text] = []
        for column in columns:
            # Text, not markup: names and errors may hold [brackets].
            text = Text(column.cell(item))
            if column.header == "state":
                text.stylize(colour)
            cells.append(text)
        table.add_row(*cells)
    return table


def backends_text(worker: dict[str, Any]) -> str:
    """Every backend of a worker: proven with its speed, or refused with ffmpeg's reason."""
    parts = []
    for b in worker["backends"]:
        speed = (f" {b['realtime']:g}×" if b.get("realtime") else "") + (
            f" {b['fps']:.0f}fps" if b.get("fps") else ""
        )
        parts.append(f"{b['backend']} ✓{speed}")
    for p in worker.get("problems") or []:
        kind = f" ({p['kind']})" if p.get("kind") else ""
        reason = f": {p['reason']}" if p.get("reason") else ""
        parts.append(f"{p['backend']} ✗ {refused_word(p['status'])}{kind}{reason}")
    return "\n".join(parts)


def workers_table(workers: list[dict[str, Any]]) -> Table:
    """Workers: name, queues, every backend (✓ proven / ✗ refused and why), the caption
    decoder, job, heartbeat."""
    table = Table(title="workers")
    table.add_column("worker", no_wrap=True)
    table.add_column("queues")
    table.add_column("backends (✓ proven, × realtime, fps; ✗ refused: reason)", overflow="fold")
    table.add_column("captions", no_wrap=True)
    table.add_column("job", no_wrap=True)
    table.add_column("heartbeat", no_wrap=True)
    for w in workers:
        table.add_row(
            Text(w["hostname"]), ",".join(w["queues"]), Text(backends_text(w)),
            caption_cell(w.get("captions")),
            (w["current_job"] or "")[:12], f"{w['heartbeat_age_s']:.0f}s ago",
        )  # fmt: skip
    return table


def caption_cell(captions: dict[str, Any] | None) -> Text:
    """A worker's ARIB caption decoder, "no decoder" (captions dropped there), or "?"."""
    if captions is None:
        return Text("?")
    if captions.get("decoder"):
        return Text(str(captions["decoder"]))
    return Text("no decoder", style="yellow")


def presence_tables(data: dict[str, Any]) -> list[Table]:
    """Workers and hosts as tables."""
    table = workers_table(data["workers"])
    tables = [table]
    if data["hosts"]:
        hosts = Table(title="host agents")
        for column in ("host", "VM", "last action", "heartbeat"):
            hosts.add_column(column)
        for h in data["hosts"]:
            hosts.add_row(
                h["name"], h["vm_state"], Text(h["last_action"]), f"{h['heartbeat_age_s']:.0f}s ago"
            )
        tables.append(hosts)
    return tables
