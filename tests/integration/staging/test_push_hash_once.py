"""A verified output is hashed once, by its push, and still committed only as verified.

Real sshd. The file's fingerprint when it was verified (inode, size, mtime) proves the
bytes the push hashed and sent are the verified bytes; a file changed by then is never
committed and leaves nothing at the destination.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.staging.conftest import make_settings
from tests.support.sshd import SshdProcess
from worker.encode import remote_output
from worker.encode.pipeline import Attempt
from worker.encode.remote_output import deliver_remote, prepare_remote
from worker.errors import OutputError
from worker.jobs import EncodeResult, Job
from worker.outputs.identity import local_fingerprint
from worker.settings.model import Settings
from worker.staging import local as staging_local

pytestmark = pytest.mark.integration

RESULT = EncodeResult(
    job_id="0" * 20,
    output="x",
    backend="x264",
    size_bytes=1,
    duration_s=1.0,
    video_codec="h264",
    width=2,
    height=2,
    audio_streams=1,
    encode_seconds=1.0,
    source_duration_s=1.0,
    average_fps=None,
)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hash-once")


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    size=st.integers(0, 1024 * 1024),
    change=st.sampled_from([None, "append", "rewrite-same-size", "replace-inode"]),
)
def test_the_push_hashes_the_verified_file_once_and_commits_only_it_unchanged(
    sshd: SshdProcess,
    place: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    change: str | None,
) -> None:
    n = len(list(place.iterdir()))
    remote = place / f"remote-{n}"
    remote.mkdir()
    staging = make_settings(sshd, remote, place / f"scratch-{n}")
    worker = Settings(state_dir=place / f"state-{n}", staging=staging.model_dump())
    verified = place / f"verified-{n}.mp4"
    data = os.urandom(size)
    verified.write_bytes(data)
    written = local_fingerprint(str(verified))
    hashed: list[Path] = []
    real_hash = staging_local.file_sha256

    def counting(path: Path) -> str:  # our own helper, spied on, still doing the work
        hashed.append(path)
        return real_hash(path)

    monkeypatch.setattr(remote_output, "file_sha256", counting)

    def after_the_push(_temp: Path) -> None:
        # What a stray writer might do while the bytes were on their way.
        if change == "append":
            with verified.open("ab") as fh:
                fh.write(b"x")
        elif change == "rewrite-same-size":
            verified.write_bytes(os.urandom(size))
            os.utime(verified, ns=(1, 1))
        elif change == "replace-inode":
            other = verified.with_suffix(".new")
            other.write_bytes(data)
            other.replace(verified)

    job = Job.create(f"sftp://rec/show-{n}.ts", "h264-x264")
    attempt = Attempt(settings=worker, backends=[], before_commit=after_the_push)
    with prepare_remote(job, attempt) as remote_out:
        if change is None:
            deliver_remote(attempt, remote_out, verified, written, RESULT)
            final = remote_out.output.rsplit("/", 1)[1]
            assert sorted(p.name for p in remote.iterdir()) == [final]
            got = (remote / final).read_bytes()
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        else:
            with pytest.raises(OutputError, match="changed after verification"):
                deliver_remote(attempt, remote_out, verified, written, RESULT)
            assert list(remote.iterdir()) == [], "nothing committed, no temporary file left"
    assert hashed == [], "no second pass over the file: the push's own hash is the only one"
