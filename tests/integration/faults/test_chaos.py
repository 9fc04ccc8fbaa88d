"""30 recordings through two workers and the scheduler while every kind of fault happens.

The short variant of bench/chaos.py: real network namespaces, sshd, redis-server,
`kamado scheduler run` and two `kamado worker` processes; a seeded loop does each fault
(kill -9 of a worker or its pool child mid-encode, Redis killed and restarted, Redis
frozen past the lease, an SFTP link cut, a full scratch disk) at least twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos import FAULTS, chdir_repo, run_once
from tests.support.netns import netns_problem
from tests.support.sshd import require_sshd
from worker.encode.sample import make_sample

pytestmark = pytest.mark.integration

JOBS = 30


@pytest.mark.timeout(400)
def test_thirty_recordings_under_chaos_end_done_or_failed_with_a_reason_and_nothing_else(
    tmp_path: Path,
) -> None:
    why = netns_problem()
    if why:
        pytest.skip(f"network namespaces are not available: {why}")
    require_sshd()
    clip = make_sample(tmp_path / "clip.ts", seconds=4)  # encodes long enough to be hit
    with chdir_repo():
        figures = run_once(tmp_path / "world", clip, JOBS, seed=12, chaos_seconds=150,
                           gap=(0.5, 1.5), settle=180, each=2)  # fmt: skip
    report = "\n".join([*figures.failures, *figures.exits])
    assert all(figures.faults[kind] >= 2 for kind in FAULTS), figures.faults
    assert figures.lost == 0, report
    assert figures.duplicates == 0, report
    assert figures.sources_changed == 0, report
    assert figures.bad_outputs == 0, report
    assert figures.leftovers == 0, report
    assert figures.input_blamed == 0, report  # every recording is valid
    assert figures.done + figures.failed == JOBS, report
    # A worker gone by itself is a crash, unless its watchdog made it exit for systemd.
    assert all("so systemd restarts the worker" in e for e in figures.exits), report
