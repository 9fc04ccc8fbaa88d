"""Which attempt counts as a hardware failure of this worker (pure parts of the ledger)."""

from __future__ import annotations

from datetime import UTC, datetime

from guest_agent.ledger import attempt_backend, last_attempt
from worker.broker.registry import AttemptRecord, JobRecord
from worker.errors import HARDWARE_KINDS
from worker.jobs import Job, JobState


def attempt(
    number: int, worker: str, kind: str | None, backend: str | None = None
) -> AttemptRecord:
    at = datetime(2026, 1, 1, 0, number, tzinfo=UTC)
    return AttemptRecord(
        number=number, attempt_id=f"a{number}", worker=worker, started_at=at, ended_at=at,
        outcome="failed, will retry", kind=kind, backend=backend,
    )  # fmt: skip


def record(*attempts: AttemptRecord, backend: str | None = "vaapi") -> JobRecord:
    job = Job.create("/rec/番組 1.ts", "h264-intel")
    return JobRecord(job=job, state=JobState.QUEUED, backend=backend, history=list(attempts))


def test_the_latest_attempt_of_this_worker_is_the_one_counted() -> None:
    rec = record(
        attempt(1, "me", "hardware"), attempt(2, "other", "input"), attempt(3, "me", "stalled")
    )
    found = last_attempt(rec, "me")
    assert found is not None and found.number == 3


def test_an_attempt_without_its_own_backend_takes_the_jobs_last_progress_backend() -> None:
    rec = record(attempt(1, "me", "hardware"))
    assert attempt_backend(rec, rec.history[0]) == "vaapi"
    own = record(attempt(1, "me", "hardware", backend="qsv"))
    assert attempt_backend(own, own.history[0]) == "qsv"


def test_hardware_crash_and_stall_count_and_bad_input_does_not() -> None:
    assert {"hardware", "crash", "stalled"} == HARDWARE_KINDS
    assert "input" not in HARDWARE_KINDS and "option" not in HARDWARE_KINDS
