"""The job table keeps every recording's whole name at any terminal width."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from scheduler.cli.job_table import MIN_DETAIL, detail, fit, jobs_table, priority_word
from scheduler.control import worker_host

STATES = ["queued", "encoding", "done", "failed", "cancelled"]
# Names a recorder writes: Japanese, full-width, brackets, quotes, spaces.
NAME_CHARS = st.sampled_from(list("ニュース番組「」『』[]（）第話ＮＨＫ abcXYZ0123'\"#・ー"))


# What the id and state columns and the table's rules take (the widest state, cancelled).
ID_AND_STATE = 1 + 3 * 3 + 8 + len("cancelled")


def a_row(name: str, state: str, error: str, n: int) -> dict[str, Any]:
    return {
        "id": f"{n:020x}", "state": state, "source": f"/rec/{name}.ts", "profile": "h264-auto",
        "priority": n % 10, "worker": "celery@gpu-vm", "worker_host": "gpu-vm",
        "backend": "vaapi", "progress": 37.0, "fps": 39.0, "eta_s": 36.0, "age_s": 4000.0,
        "error": error, "waiting": "queue position 3 in encode.cpu", "flags": [],
        "size_bytes": 12_300_000, "duration_s": 60.0, "realtime": 4.0,
    }  # fmt: skip


def rendered(rows: list[dict[str, Any]], width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None, legacy_windows=False)
    console.print(jobs_table(rows, width=width))
    return console.export_text().splitlines()


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.text(NAME_CHARS, min_size=1, max_size=24), min_size=1, max_size=4),
    states=st.lists(st.sampled_from(STATES), min_size=4, max_size=4),
    error=st.text(min_size=0, max_size=120).map(lambda t: t.replace("\n", " ").strip()),
    width=st.integers(min_value=60, max_value=240),
)
def test_every_recording_name_is_shown_whole_on_one_line_or_folded_when_wider(
    names: list[str], states: list[str], error: str, width: int
) -> None:
    rows = [a_row(n.strip() or "x", states[i], error, i) for i, n in enumerate(names)]
    lines = rendered(rows, width)
    assert all(cell_len(line) <= width for line in lines)
    # The recording column's cells in order (│ id │ state │ recording │ ...).
    column = "".join(p[3].strip() for p in (line.split("│") for line in lines) if len(p) > 4)
    for item in rows:
        name = item["source"].removeprefix("/rec/")
        if any(name in line for line in lines):
            continue
        # Only a name wider than what id and state leave may fold, and then it folds whole.
        assert cell_len(name) > width - ID_AND_STATE, (name, lines)
        assert name.replace(" ", "") in column.replace(" ", ""), (name, lines)


@settings(max_examples=40, deadline=None)
@given(width=st.integers(min_value=40, max_value=300))
def test_columns_go_least_telling_first_and_the_detail_column_stays_when_it_fits(
    width: int,
) -> None:
    rows = [a_row("ニュース7", "failed", "ffmpeg: Invalid data found when processing input", 0)]
    kept, widths = fit(rows, width)
    headers = [c.header for c in kept]
    assert headers[:3] == ["id", "state", "recording"]
    dropped = [c for c in fit(rows, 10_000)[0] if c not in kept]
    # Whatever went, went before everything that stayed (by its drop rank).
    for gone in dropped:
        assert all(c.drop is None or (gone.drop or 0) <= c.drop for c in kept)
    if "detail" in headers:
        assert widths["detail"] >= MIN_DETAIL


def test_a_wide_terminal_shows_every_column_and_the_whole_error() -> None:
    error = "ffmpeg: Invalid data found when processing input (壊れた録画.ts)"
    lines = "\n".join(rendered([a_row("壊れた録画", "failed", error, 1)], 200))
    for header in ("profile", "prio", "worker", "backend", "fps", "ETA", "age", "detail"):
        assert header in lines
    assert error in lines


def test_details_say_why_a_job_waits_what_it_produced_and_why_it_failed() -> None:
    queued = a_row("a", "queued", "", 0)
    assert detail(queued) == "waiting: queue position 3 in encode.cpu"
    assert detail(a_row("a", "done", "", 0)) == "12.3 MB · 60s video · 4.0× realtime"
    assert detail(a_row("a", "failed", "bad input", 0)) == "bad input"
    assert detail(a_row("a", "cancelled", "", 0)) == "cancelled"
    words = [priority_word(p) for p in (0, 2, 5, 7, 9)]
    assert words == ["urgent", "high", "normal", "low", "idle"]


@given(name=st.text(min_size=1, max_size=20).filter(lambda t: "@" not in t), host=st.text())
def test_the_worker_column_shows_the_host_of_a_default_named_worker(name: str, host: str) -> None:
    assert worker_host(f"celery@{host}") == (host or "celery@")
    if name != "celery":
        assert worker_host(f"{name}@{host}") == f"{name}@{host}"


def test_at_80_columns_a_long_name_keeps_its_line_and_the_error_follows_the_table() -> None:
    long_name = "ニュース7 「特集」 第12回 拡大版スペシャル"
    error = "ffmpeg: Invalid data found when processing input"
    rows = [a_row(long_name, "failed", error, 1), a_row("b", "cancelled", "while it ran", 2)]
    assert "detail" not in [c.header for c in fit(rows, 80)[0]]
    lines = rendered(rows, 80)
    assert any(f"{long_name}.ts" in line for line in lines)
    assert f"{1:020x}"[:8] + " " + error in lines
    assert f"{2:020x}"[:8] + " while it ran" in lines
    assert all(cell_len(line) <= 80 for line in lines)
