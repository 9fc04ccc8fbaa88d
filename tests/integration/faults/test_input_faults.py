"""Bad inputs, a full disk and cancel: clear reasons, no retry loop, nothing half-written."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.faults.conftest import Rig
from tests.support.media import leftovers, sha256
from tests.support.procs import pids_with, wait_for
from worker.jobs import JobState

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("clip", "reason"),
    [
        ("zero_ts", "empty file (0 bytes)"),
        ("truncated", "truncated MPEG-TS"),
        ("text_ts", "not a recording ffprobe can read"),
    ],
)
def test_a_bad_recording_fails_once_with_its_reason(rig: Rig, clip: str, reason: str) -> None:
    source = rig.source(getattr(rig.clips, clip), name=f"bad {clip}.ts")
    digest = sha256(source)
    rig.start_worker("a")
    job = rig.submit(source, profile="h264-x264")
    record = rig.wait_state(job, {JobState.FAILED, JobState.DONE}, timeout=60)
    assert record.state is JobState.FAILED
    assert reason in (record.error or "") and source.name in (record.error or "")
    assert record.attempts == 1  # poison input: no retry loop
    assert sha256(source) == digest
    assert list(rig.out.iterdir()) == []


def test_a_recording_that_vanishes_after_submission_fails_clearly(rig: Rig) -> None:
    source = rig.source(rig.clips.isdb_1080i, name="消えた.ts")
    job = rig.submit(source, profile="h264-x264")
    source.unlink()  # deleted on the recorder before any worker picked it up
    rig.start_worker("a")
    record = rig.wait_state(job, {JobState.FAILED, JobState.DONE}, timeout=60)
    assert record.state is JobState.FAILED
    assert "消えた.ts: no such file" in (record.error or "")
    assert record.attempts == 1


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"tmpfs mounts are not available here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_output_disk_fails_the_job_with_no_partial_output(rig: Rig) -> None:
    source = rig.source(rig.clips.long_1080i, name="big.ts")
    digest = sha256(source)
    with small_filesystem(rig.root / "tiny", "256k") as tiny:
        rig.out = tiny
        rig.start_worker("a")
        job = rig.submit(source, profile="h264-x264")
        record = rig.wait_state(job, {JobState.FAILED, JobState.DONE}, timeout=90)
        assert record.state is JobState.FAILED
        assert "no space left" in (record.error or "").lower()
        assert record.attempts == 1
        assert list(tiny.iterdir()) == []
    assert sha256(source) == digest


def test_cancel_of_a_running_job_kills_ffmpeg_within_5_s(rig: Rig) -> None:
    source = rig.source()
    digest = sha256(source)
    rig.start_worker("a")
    job = rig.submit(source)
    rig.wait_encoding(job)
    assert pids_with(str(rig.out))
    assert rig.registry.request_cancel(job.id) == "cancelling"
    assert wait_for(lambda: not pids_with(str(rig.out)), timeout=5)
    record = rig.wait_state(job, {JobState.CANCELLED, JobState.DONE, JobState.FAILED}, 10)
    assert record.state is JobState.CANCELLED
    assert list(rig.out.iterdir()) == []
    assert leftovers(rig.out) == []
    assert sha256(source) == digest


def test_cancel_of_a_queued_job_means_it_never_runs(rig: Rig) -> None:
    first = rig.submit(rig.source(name="first.ts"))
    second = rig.submit(rig.source(rig.clips.isdb_1080i, name="second.ts"))
    assert rig.registry.request_cancel(second.id) == "cancelled"
    rig.start_worker("a")
    rig.wait_state(first, {JobState.DONE}, timeout=120)
    record = rig.wait_state(second, {JobState.CANCELLED}, timeout=10)
    assert record.attempts == 0
    assert sorted(p.name for p in rig.out.iterdir()) == ["first.mp4"]
