"""A remote output is checked before the encode and never harms a file (real sshd, ffmpeg)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.staging.conftest import fill_disk
from tests.support.media import Clips, sha256
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess
from worker.broker.claims import Claims
from worker.broker.registry import Registry
from worker.encode.pipeline import Attempt, encode_job
from worker.encode.remote_output import prepare_remote
from worker.errors import OutputConflict, OutputRefused
from worker.jobs import Job, JobState
from worker.profiles import Backend
from worker.progress import Progress
from worker.settings.model import Settings
from worker.staging.errors import AccessDeniedError, NoSpaceError, RemoteNotFoundError
from worker.staging.outbox import outbox_dir

pytestmark = pytest.mark.integration

SmallFs = Callable[[str, int], Path]


def worker_settings(
    sshd: SshdProcess, recorder: Path, scratch: Path, **location: object
) -> Settings:
    """A worker whose `recorder` location is ``recorder`` over SFTP (recorder_path /srv/rec)."""
    loc: dict[str, object] = {
        "kind": "sftp", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "key_file": str(sshd.user_key), "known_hosts": str(sshd.known_hosts),
        "root": str(recorder), "recorder_path": "/srv/rec", "connect_timeout": 5,
        "io_timeout": 10, **location,
    }  # fmt: skip
    return Settings(
        state_dir=scratch / "state",
        staging={"scratch_dir": str(scratch / "scratch"), "min_free_mb": 0, "retries": 0,
                 "retry_delay": 0.01, "locations": {"recorder": loc}},
    )  # fmt: skip


class Seen:
    """The states an attempt reported: proves whether ffmpeg ever started."""

    def __init__(self) -> None:
        self.states: list[JobState] = []
        self.on_verifying: Callable[[], None] = lambda: None

    def __call__(self, progress: Progress) -> None:
        if progress.state not in self.states and progress.state is JobState.VERIFYING:
            self.on_verifying()
        self.states.append(progress.state)

    @property
    def encoded(self) -> bool:
        return JobState.ENCODING in self.states


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    path = tmp_path / "recorder"
    path.mkdir()
    return path


def attempt(settings: Settings, seen: Seen) -> Attempt:
    return Attempt(settings=settings, backends=[Backend.X264], on_progress=seen)


def tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its sha256."""
    return {str(p.relative_to(directory)): sha256(p) for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("spelling", ["sftp://recorder/show.mp4", "/srv/rec/show.mp4"])
def test_an_sftp_output_that_is_its_own_source_is_refused_before_the_encode(
    sshd: SshdProcess, clips: Clips, recorder: Path, tmp_path: Path, spelling: str
) -> None:
    shutil.copy2(clips.isdb_1080i, recorder / "show.mp4")  # a recording that ends in .mp4
    before = tree(recorder)
    job = Job.create(spelling, "h264-x264")  # no output_dir: the output lands beside it
    assert job.output == job.source
    seen = Seen()
    with pytest.raises(OutputRefused, match="overwrite the source"):
        encode_job(job, attempt(worker_settings(sshd, recorder, tmp_path), seen))
    assert not seen.encoded
    assert tree(recorder) == before


def test_an_output_reached_through_a_symlinked_remote_directory_is_still_the_source(
    sshd: SshdProcess, clips: Clips, recorder: Path, tmp_path: Path
) -> None:
    shutil.copy2(clips.isdb_1080i, recorder / "show.mp4")
    os.symlink(".", recorder / "same")
    before = tree(recorder)
    job = Job.create(
        "sftp://recorder/show.mp4", "h264-x264", output="sftp://recorder/same/show.mp4"
    )
    seen = Seen()
    with pytest.raises(OutputRefused, match="overwrite the source"):
        encode_job(job, attempt(worker_settings(sshd, recorder, tmp_path), seen))
    assert not seen.encoded
    assert tree(recorder) == before


def test_a_remote_file_kamado_did_not_write_is_refused_before_the_encode_and_kept(
    sshd: SshdProcess, clips: Clips, recorder: Path, tmp_path: Path
) -> None:
    shutil.copy2(clips.isdb_1080i, recorder / "第1話.ts")
    (recorder / "第1話.mp4").write_bytes(b"the user's own file")
    before = tree(recorder)
    seen = Seen()
    with pytest.raises(OutputConflict, match="did not write"):
        encode_job(
            Job.create("sftp://recorder/第1話.ts", "h264-x264"),
            attempt(worker_settings(sshd, recorder, tmp_path), seen),
        )
    assert not seen.encoded
    assert tree(recorder) == before


def test_a_missing_remote_output_directory_fails_before_the_encode(
    sshd: SshdProcess, clips: Clips, recorder: Path, tmp_path: Path
) -> None:
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    seen = Seen()
    job = Job.create("sftp://recorder/a.ts", "h264-x264", output="sftp://recorder/gone/a.mp4")
    with pytest.raises(RemoteNotFoundError, match="does not exist") as caught:
        encode_job(job, attempt(worker_settings(sshd, recorder, tmp_path), seen))
    assert "gone" in str(caught.value) and not caught.value.transient
    assert not seen.encoded
    assert sorted(p.name for p in recorder.iterdir()) == ["a.ts"]


def test_a_read_only_remote_location_fails_before_the_encode(
    sshd: SshdProcess, clips: Clips, recorder: Path, tmp_path: Path
) -> None:
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    seen = Seen()
    settings = worker_settings(sshd, recorder, tmp_path, writable=False)
    with pytest.raises(AccessDeniedError, match="writable = false"):
        encode_job(Job.create("sftp://recorder/a.ts", "h264-x264"), attempt(settings, seen))
    assert not seen.encoded
    assert sorted(p.name for p in recorder.iterdir()) == ["a.ts"]


def test_a_full_remote_disk_fails_before_the_encode(
    sshd: SshdProcess, clips: Clips, small_fs: SmallFs, tmp_path: Path
) -> None:
    recorder = small_fs("full_recorder", 8192)
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    fill_disk(recorder)
    seen = Seen()
    with pytest.raises(NoSpaceError, match="free at the destination"):
        encode_job(
            Job.create("sftp://recorder/a.ts", "h264-x264"),
            attempt(worker_settings(sshd, recorder, tmp_path), seen),
        )
    assert not seen.encoded
    assert sorted(p.name for p in recorder.iterdir()) == ["a.ts", "hog"]


@pytest.fixture
def filling(small_fs: SmallFs) -> Iterator[Path]:
    yield small_fs("filling_recorder", 8192)


def test_a_push_that_fails_after_the_encode_keeps_the_verified_file_and_the_retry_only_pushes(
    sshd: SshdProcess, clips: Clips, filling: Path, tmp_path: Path
) -> None:
    recorder = filling
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    source = sha256(recorder / "a.ts")
    settings = worker_settings(sshd, recorder, tmp_path)
    job = Job.create("sftp://recorder/a.ts", "h264-x264")
    first = Seen()
    hogs: list[Path] = []
    # The disk fills during the encode.
    first.on_verifying = lambda: hogs.append(fill_disk(recorder))
    with pytest.raises(NoSpaceError) as caught:
        encode_job(job, attempt(settings, first))
    assert first.encoded and caught.value.transient
    kept = outbox_dir(settings.staging.scratch_dir) / f"{job.id}.mp4"
    assert kept.is_file(), "the verified output waits for the retry"
    verified = sha256(kept)
    assert sorted(p.name for p in recorder.iterdir()) == ["a.ts", "hog"]

    hogs[0].unlink()  # space was freed; the job's retry runs
    second = Seen()
    result = encode_job(job, attempt(settings, second))
    assert not second.encoded, "the retry pushed the kept file without encoding again"
    assert sha256(recorder / "a.mp4") == verified
    assert result.size_bytes == (recorder / "a.mp4").stat().st_size
    assert sha256(recorder / "a.ts") == source
    assert sorted(p.name for p in recorder.iterdir()) == ["a.mp4", "a.ts"]
    assert list(outbox_dir(settings.staging.scratch_dir).iterdir()) == []


def test_a_push_a_killed_attempt_left_is_removed_and_other_jobs_pushes_are_left_alone(
    sshd: SshdProcess, clips: Clips, recorder: Path, tmp_path: Path
) -> None:
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    job = Job.create("sftp://recorder/a.ts", "h264-x264")
    (recorder / f".kamado-{job.id}-deadbeef0001.part").write_bytes(b"half a push")
    other = recorder / f".kamado-{'0' * 20}-deadbeef0002.part"
    other.write_bytes(b"another job's push in progress")
    seen = Seen()
    encode_job(job, attempt(worker_settings(sshd, recorder, tmp_path), seen))
    assert sorted(p.name for p in recorder.iterdir()) == sorted(["a.ts", "a.mp4", other.name])
    assert other.read_bytes() == b"another job's push in progress"


def test_a_renamed_output_is_never_the_source_even_when_replacing_is_allowed(
    sshd: SshdProcess, redis_server: RedisProcess, recorder: Path, tmp_path: Path
) -> None:
    (recorder / "x.mp4").write_bytes(b"the user's file")
    (recorder / "x (2).mp4").write_bytes(b"a recording that happens to end in .mp4")
    (recorder / "y.ts").write_bytes(b"another recording")
    base = worker_settings(sshd, recorder, tmp_path)
    settings = base.model_copy(
        update={"encode": base.encode.model_copy(update={"replace_existing": True})}
    )
    claims = Claims(Registry.connect(redis_server.url))
    first = Job.create("sftp://recorder/y.ts", "h264-x264", output="sftp://recorder/x.mp4")
    with prepare_remote(first, Attempt(settings=settings, backends=[], claims=claims)) as taken:
        assert taken.output == "sftp://recorder/x.mp4"  # replace_existing lets it take x.mp4
    second = Job.create(
        "sftp://recorder/x (2).mp4", "h264-x264", output="sftp://recorder/x.mp4"
    )  # x.mp4 is the first job's now; the next name, "x (2).mp4", is this job's source
    try:
        with prepare_remote(second, Attempt(settings=settings, backends=[], claims=claims)) as got:
            chosen = got.output
    except OutputRefused as e:
        chosen = str(e)
    assert chosen != second.source, "the job's own recording is never its output"
    assert (recorder / "x (2).mp4").read_bytes() == b"a recording that happens to end in .mp4"
