"""A pushed output is committed whole and only as verified, however pushes overlap (real sshd)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess
from worker.broker.registry import Registry
from worker.errors import LeaseLost
from worker.jobs import Job
from worker.runtime.lease import LeaseKeeper
from worker.settings.staging import StagingSettings
from worker.staging.api import stage_out
from worker.staging.errors import IntegrityError, LocationError
from worker.staging.outgoing import temp_name

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
MIB = 1024 * 1024


def slow(sshd: SshdProcess, remote: Path, tmp_path: Path) -> StagingSettings:
    """One write in flight, so a push is still writing when another starts."""
    return make_settings(sshd, remote, tmp_path / "scratch", max_requests=1)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_two_pushes_of_one_output_name_at_once_commit_one_whole_file(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = slow(sshd, remote, tmp_path)
    first = make_file(tmp_path / "w1" / "news.mp4", 4 * MIB)
    second = make_file(tmp_path / "w2" / "news.mp4", 4 * MIB)
    both_writing = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def push(local: Path) -> None:
        met: list[bool] = []

        def meet(done: int, total: int) -> None:
            if done >= MIB and not met:  # both are mid-push before either goes on
                met.append(True)
                both_writing.wait()

        try:
            stage_out(settings, local, "sftp://rec/news.mp4", on_progress=meet).commit()
        except (LocationError, threading.BrokenBarrierError) as e:
            errors.append(e)

    workers = [
        threading.Thread(target=push, args=(tmp_path / "w1" / "news.mp4",)),
        threading.Thread(target=push, args=(tmp_path / "w2" / "news.mp4",)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    committed = (remote / "news.mp4").read_bytes()
    assert committed in (first, second), "the committed file is one pushed file, whole"
    assert errors == [], "each push committed its own temporary file"
    assert [p.name for p in remote.iterdir()] == ["news.mp4"]


def test_a_stale_attempt_cannot_commit_over_the_attempt_that_took_its_lease(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path, own_redis: RedisProcess
) -> None:
    settings = slow(sshd, remote, tmp_path)
    registry = Registry.connect(own_redis.url, lease_ttl=1.0)
    job = Job.create("sftp://rec/news.ts", "h264-x264", output="sftp://rec/news.mp4")
    registry.record(job, queue="encode.cpu")
    make_file(tmp_path / "stale" / "news.mp4", 4 * MIB)
    newer = make_file(tmp_path / "newer" / "news.mp4", 4 * MIB)
    assert registry.acquire(job.id, "attempt-a", "w1").status == "ok"
    outcomes: list[str] = []

    def newer_attempt_runs() -> None:
        # The stale attempt's lease ran out mid-push; the newer attempt takes the job over
        # and delivers its own output while the stale one is still writing.
        while registry.lease_alive(job.id):
            threading.Event().wait(0.05)
        assert registry.acquire(job.id, "attempt-b", "w2").status == "ok"
        with LeaseKeeper(registry, job.id, "attempt-b") as keeper:
            pending = stage_out(settings, tmp_path / "newer" / "news.mp4", job.output)
            keeper.guard_commit()
            pending.commit()
        outcomes.append("newer committed")

    taken: list[bool] = []

    def takeover(done: int, total: int) -> None:
        if done >= MIB and not taken:
            taken.append(True)
            newer_attempt_runs()

    pending = stage_out(settings, tmp_path / "stale" / "news.mp4", job.output, on_progress=takeover)
    # The stale worker was cut off from the broker (no keeper renewed its lease); before
    # its rename it asks, as every attempt does, whether it still holds the lease.
    with pending, pytest.raises(LeaseLost):
        LeaseKeeper(registry, job.id, "attempt-a").guard_commit()
        pending.commit()
    assert outcomes == ["newer committed"]
    assert (remote / "news.mp4").read_bytes() == newer
    assert [p.name for p in remote.iterdir()] == ["news.mp4"]


def test_remote_temporary_names_are_short_and_unique_per_job_and_attempt() -> None:
    long_name = "/rec/" + "長" * 80 + ".mp4"  # 244 bytes of name
    names = {
        temp_name(long_name, f"{job}-{attempt}")
        for job in ("0" * 20, "1" * 20)
        for attempt in ("a" * 12, "b" * 12)
    }
    assert len(names) == 4
    for name in names:
        assert name.startswith("/rec/.kamado-") and len(name.rsplit("/", 1)[1].encode()) <= 64


def test_a_local_file_changed_after_verification_is_never_committed(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = make_settings(sshd, remote, tmp_path / "scratch")
    verified = make_file(tmp_path / "out.mp4", 2 * MIB)
    expected = digest(verified)
    # Something rewrote the verified file (same size) before it was pushed.
    (tmp_path / "out.mp4").write_bytes(verified[:MIB] + b"\xff" * MIB)
    (remote / "out.mp4").write_bytes(b"the previous output")
    with pytest.raises(IntegrityError, match="not the verified file"):
        stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", expected_sha256=expected)
    assert (remote / "out.mp4").read_bytes() == b"the previous output"
    assert [p.name for p in remote.iterdir()] == ["out.mp4"]


def test_a_remote_temporary_file_changed_before_the_rename_is_never_committed(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = make_settings(sshd, remote, tmp_path / "scratch")
    make_file(tmp_path / "out.mp4", MIB)
    pending = stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", tag="job-1")
    temp = remote / Path(pending.temp).name
    with temp.open("ab") as other:  # another program appended to the pushed file
        other.write(b"junk")
    with pending, pytest.raises(IntegrityError, match="changed before the rename"):
        pending.commit()
    assert not (remote / "out.mp4").exists()
    assert list(remote.iterdir()) == []


def test_a_push_resumed_after_a_dropped_link_still_matches_the_verified_hash(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = make_settings(sshd, remote, tmp_path / "scratch", max_requests=4)
    data = make_file(tmp_path / "out.mp4", 8 * MIB)
    killed: list[int] = []

    def drop_once(done: int, total: int) -> None:
        if done >= 3 * MIB and not killed:
            killed.append(sshd.kill_sessions())

    pending = stage_out(
        settings,
        tmp_path / "out.mp4",
        "sftp://rec/out.mp4",
        on_progress=drop_once,
        expected_sha256=digest(data),
    )
    pending.commit()
    assert killed and killed[0] >= 1, "the link was dropped mid-push"
    assert pending.sha256 == digest(data)
    assert (remote / "out.mp4").read_bytes() == data
