"""A job whose recording and output live on the recorder, reached over real SFTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.media import Clips, leftovers, sha256
from tests.support.sshd import SshdProcess, start_sshd
from worker.encode.pipeline import Attempt, encode_job
from worker.errors import SourceError, StagingError
from worker.jobs import Job
from worker.profiles import Backend
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdProcess]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def settings_for(sshd: SshdProcess, recorder: Path, scratch: Path) -> Settings:
    """A worker whose `recorder` location is the recorder's /srv/rec over SFTP."""
    location = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "key_file": str(sshd.user_key),
        "known_hosts": str(sshd.known_hosts),
        "root": str(recorder),
        "recorder_path": "/srv/rec",
    }
    return Settings(
        state_dir=scratch / "state",
        staging={"scratch_dir": str(scratch / "scratch"), "min_free_mb": 0,
                 "locations": {"recorder": location}},
    )  # fmt: skip


def test_a_recording_on_the_recorder_is_pulled_encoded_and_pushed_back(
    sshd: SshdProcess, clips: Clips, tmp_path: Path
) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    source = Path(shutil.copy2(clips.isdb_1080i, recorder / "夜のニュース 'live' $(x).ts"))
    before = sha256(source)
    settings = settings_for(sshd, recorder, tmp_path)
    job = Job.create(f"sftp://recorder/{source.name}", "h264-x264")
    assert job.output == f"sftp://recorder/{source.stem}.mp4"
    result = encode_job(job, Attempt(settings=settings, backends=[Backend.X264]))
    assert result.output == job.output
    delivered = recorder / f"{source.stem}.mp4"
    assert delivered.is_file() and delivered.stat().st_size == result.size_bytes
    assert sha256(source) == before
    assert sorted(p.name for p in recorder.iterdir()) == sorted([source.name, delivered.name])
    scratch = tmp_path / "scratch"
    assert not scratch.exists() or [p for p in scratch.rglob("*") if p.is_file()] == []


def test_a_recorder_path_is_mapped_to_the_sftp_location(
    sshd: SshdProcess, clips: Clips, tmp_path: Path
) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    shutil.copy2(clips.isdb_1080i, recorder / "a.ts")
    settings = settings_for(sshd, recorder, tmp_path)
    # The recorder's hook names its own path; the worker reaches it over SFTP.
    job = Job.create("/srv/rec/a.ts", "h264-x264")
    encode_job(job, Attempt(settings=settings, backends=[Backend.X264]))
    assert (recorder / "a.mp4").is_file()
    assert leftovers(recorder) == []


def test_a_missing_remote_recording_fails_clearly(sshd: SshdProcess, tmp_path: Path) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    settings = settings_for(sshd, recorder, tmp_path)
    with pytest.raises((SourceError, StagingError), match=r"gone\.ts"):
        encode_job(
            Job.create("sftp://recorder/gone.ts", "h264-x264"),
            Attempt(settings=settings, backends=[Backend.X264]),
        )
    assert list(recorder.iterdir()) == []
