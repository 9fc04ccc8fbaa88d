"""The tour's two acts, as the test and ``kamado demo --topology`` both run them.

Act one: a recording ends, the hook submits it, the host agent boots the guest, the guest
proves x264 (and says why qsv and vaapi fail), takes the job, pulls the recording over
SFTP, encodes, verifies, pushes the MP4 back.
Act two: a second recording while the guest is still up; QEMU is killed mid-encode; the
agent restarts the VM, the guest comes back and the job ends done exactly once; with no
work left, the agent shuts the guest down (ACPI) after its idle time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from worker.broker.registry import JobRecord
from worker.errors import KamadoError
from worker.jobs import JobState
from worker.tour.rig import Topology
from worker.tour.watch import Watch

POLL = 0.25
T = TypeVar("T")


class TourError(KamadoError):
    """A step of the tour did not happen in time (the message says which, with the logs)."""


@dataclass(frozen=True)
class Act:
    """What one act produced, and when (seconds on the watch's clock)."""

    job_id: str
    record: JobRecord
    recording: Path
    digest_before: str
    hook_at: float
    booted_at: float
    first_beat_at: float
    done_at: float
    shut_off_at: float | None = None
    killed_at: float | None = None

    @property
    def hook_to_verified(self) -> float:
        """Seconds from the hook to the verified output."""
        return self.done_at - self.hook_at

    @property
    def boot_to_beat(self) -> float:
        """Seconds from the agent's start of the VM to the guest worker's first heartbeat."""
        return self.first_beat_at - self.booted_at

    @property
    def output(self) -> Path:
        """The MP4 next to the recording."""
        return self.recording.with_suffix(".mp4")


def sha256(path: Path) -> str:
    """The file's SHA-256."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def wait(
    topo: Topology,
    watch: Watch,
    jobs: list[str],
    until: Callable[[], T | None],
    what: str,
    timeout: float,
) -> T:
    """Poll the watch until ``until()`` is truthy; a TourError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        watch.poll(jobs)
        value = until()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TourError(f"{what} did not happen within {timeout:g} s\n{topo.logs()}")
        time.sleep(POLL)


def _final(topo: Topology, job_id: str) -> JobRecord | None:
    record = topo.job(job_id)
    return record if record is not None and record.state.final else None


def _vm_is(watch: Watch, state: str, after: float) -> float | None:
    event = watch.first("vm", f"VM {state}", after)
    return event.at if event else None


def _booted_since(watch: Watch, after: float) -> tuple[float, float]:
    start = watch.first("vm", "agent: start", after)
    beat = watch.first("beat", "proven", after)
    if start is None or beat is None:
        raise TourError("the agent's start or the guest's first heartbeat was not seen")
    return start.at, beat.at


def act_one(topo: Topology, watch: Watch, timeout: float = 240) -> Act:
    """A recording through the whole topology, from the hook to the verified MP4."""
    recording = topo.record("ニュース 'tour' $(x).ts", seconds=3)
    digest = sha256(recording)
    hook_at = watch.now()
    watch.note("recorder", f"recording ended: {recording.name}; EPGStation's hook runs")
    job_id = topo.hook(recording, "1")
    record = _done(topo, watch, job_id, timeout)
    done_at = watch.now()
    booted, beat = _booted_since(watch, hook_at)
    return Act(job_id, record, recording, digest, hook_at, booted, beat, done_at)


def _done(topo: Topology, watch: Watch, job_id: str, timeout: float) -> JobRecord:
    record = wait(topo, watch, [job_id], lambda: _final(topo, job_id), "the job's end", timeout)
    if record.state is not JobState.DONE:
        raise TourError(f"job {job_id} ended {record.state.value}: {record.error}")
    return record


def _encoding(topo: Topology, job_id: str) -> bool:
    record = topo.job(job_id)
    return bool(
        record is not None
        and record.state is JobState.ENCODING
        and record.progress is not None
        and record.progress.percent > 0
    )


def act_two(topo: Topology, watch: Watch, timeout: float = 300) -> Act:
    """A second recording; QEMU killed mid-encode; the job still ends done exactly once;
    then the idle shutdown."""
    recording = topo.record("ドラマ 第2話.ts", seconds=4)
    digest = sha256(recording)
    hook_at = watch.now()
    watch.note("recorder", f"recording ended: {recording.name}; EPGStation's hook runs")
    job_id = topo.hook(recording, "2")
    wait(topo, watch, [job_id], lambda: _encoding(topo, job_id), "the guest's encode", timeout)
    pid = topo.kill_qemu()
    killed_at = watch.note("host", f"QEMU (pid {pid}) killed mid-encode", "vm").at
    wait(topo, watch, [job_id],
         lambda: watch.first("vm", "restart after the VM stopped", killed_at),
         "the agent's restart of the VM", 60)  # fmt: skip
    record = _done(topo, watch, job_id, timeout)
    done_at = watch.now()
    shut = wait(topo, watch, [job_id], lambda: _vm_is(watch, "shutoff", done_at),
                "the idle shutdown", 90)  # fmt: skip
    booted, beat = _booted_since(watch, killed_at)
    return Act(job_id, record, recording, digest, hook_at, booted, beat, done_at, shut,
               killed_at)  # fmt: skip
