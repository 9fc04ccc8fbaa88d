"""The spool on disk: whole files in submission order, locks between processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.backlog import parse_age
from scheduler.spool.durable import Spool
from scheduler.submission import Submission
from worker.errors import BadInputError
from worker.jobs import Job


def sub(name: str) -> Submission:
    job = Job.create(f"/rec/{name}.ts", "h264-auto")
    return Submission(job=job, origin="epgstation", recorder_path=job.source)


def test_entries_come_back_whole_and_in_submission_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    names = ["三", "一 'x'", "$(二)"]
    for name in names:
        spool.put(sub(name))
    entries = spool.entries()
    assert [e.submission.job.source for e in entries if e.submission] == [
        f"/rec/{n}.ts" for n in names
    ]
    assert not [p for p in (tmp_path / "spool").iterdir() if p.name.startswith(".tmp-")]
    spool.remove(entries[0])
    assert len(spool.entries()) == 2


def test_a_drain_lock_is_exclusive(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with spool.drain_lock() as first, Spool(tmp_path).drain_lock() as second:
        assert first and not second


def test_service_lock_is_seen_only_while_held(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert not spool.service_running()
    with spool.service_lock() as got:
        assert got
        assert spool.service_running()
    assert not spool.service_running()


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30m", 1800), ("7d", 604800)])
def test_ages_parse_with_units(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


def test_bad_ages_are_refused() -> None:
    with pytest.raises(BadInputError, match="--older-than 'soon'"):
        parse_age("soon")
