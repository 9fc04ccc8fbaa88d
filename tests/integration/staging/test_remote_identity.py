"""A remote path's identity and the no-replace commit, over both SFTP transports (real sshd)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import on_transport
from tests.support.sshd import SshdProcess
from worker.settings.staging import StagingSettings
from worker.staging.api import stage_out
from worker.staging.connection import connect
from worker.staging.errors import OutputExistsError, RemoteNotFoundError
from worker.staging.identity import RemoteView, remote_identity
from worker.staging.preflight import check_output_directory
from worker.staging.sftp.openssh_files import OpenSshSession
from worker.staging.sftp.paramiko_files import SftpSession
from worker.staging.uri import resolve

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
TRANSPORTS = {"openssh": OpenSshSession, "paramiko": SftpSession}


@pytest.fixture(params=sorted(TRANSPORTS))
def settings(
    request: pytest.FixtureRequest, sshd: SshdProcess, remote: Path, tmp_path: Path
) -> StagingSettings:
    """Settings whose location `rec` (and `alias`, another root on the same server) use
    the transport named by the parameter."""
    kind = TRANSPORTS[request.param]
    base = on_transport(request.param, sshd, remote, tmp_path)
    alias = base.locations["rec"].model_copy(update={"root": str(remote / "sub")})
    settings = base.model_copy(update={"locations": {**base.locations, "alias": alias}})
    files = connect(settings, "rec")
    try:
        assert isinstance(files, kind)
    finally:
        files.close()
    return settings


def test_every_spelling_of_one_remote_file_has_one_identity(
    settings: StagingSettings, remote: Path, make_file: MakeFile
) -> None:
    (remote / "sub").mkdir()
    make_file(remote / "sub" / "録画 'a'.ts", 10)
    os.symlink("sub", remote / "link")
    spellings = [
        "sftp://rec/sub/録画 'a'.ts",
        "sftp://rec/link/録画 'a'.ts",
        "sftp://alias/録画 'a'.ts",
    ]
    files = connect(settings, "rec")
    try:
        found = {remote_identity(settings, uri, files=files).key for uri in spellings}
        view = RemoteView(settings, files, "rec")
        assert {view.key(uri) for uri in spellings} == found
        assert view.existing(spellings[1]) is not None
    finally:
        files.close()
    assert found == {f"sftp:127.0.0.1:{settings.locations['rec'].port}:{remote}/sub/録画 'a'.ts"}


def test_a_missing_file_has_an_identity_and_no_fingerprint_but_a_missing_directory_fails(
    settings: StagingSettings, remote: Path
) -> None:
    os.symlink("nowhere.mp4", remote / "dangling.mp4")
    files = connect(settings, "rec")
    try:
        view = RemoteView(settings, files, "rec")
        assert view.key("sftp://rec/new.mp4").endswith(f"{remote}/new.mp4")
        assert view.existing("sftp://rec/new.mp4") is None
        assert view.existing("sftp://rec/dangling.mp4") is not None, "a dangling symlink is there"
        with pytest.raises(RemoteNotFoundError):
            view.key("sftp://rec/no/such/dir.mp4")
    finally:
        files.close()


def test_a_commit_that_must_not_replace_leaves_a_file_that_appeared_meanwhile(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    make_file(tmp_path / "out.mp4", 100_000)
    pending = stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", replace=False)
    (remote / "out.mp4").write_bytes(b"someone else's")  # appeared during the push
    with pending, pytest.raises(OutputExistsError, match="does not replace"):
        pending.commit()
    assert (remote / "out.mp4").read_bytes() == b"someone else's"
    assert [p.name for p in remote.iterdir()] == ["out.mp4"], "the pushed file is removed"


def test_a_commit_that_may_replace_replaces_and_one_that_must_not_lands_when_free(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(tmp_path / "out.mp4", 100_000)
    (remote / "old.mp4").write_bytes(b"kamado's previous output")
    stage_out(settings, tmp_path / "out.mp4", "sftp://rec/old.mp4", replace=True).commit()
    stage_out(settings, tmp_path / "out.mp4", "sftp://rec/new.mp4", replace=False).commit()
    assert (remote / "old.mp4").read_bytes() == data
    assert (remote / "new.mp4").read_bytes() == data
    assert sorted(p.name for p in remote.iterdir()) == ["new.mp4", "old.mp4"]


def test_the_pre_encode_check_finds_a_missing_directory_and_leaves_nothing_behind(
    settings: StagingSettings, remote: Path
) -> None:
    files = connect(settings, "rec")
    try:
        good = resolve(settings, "sftp://rec/out.mp4")
        check_output_directory(settings, files, good, tag="job-attempt")
        assert list(remote.iterdir()) == [], "the write probe was removed"
        missing = resolve(settings, "sftp://rec/gone/out.mp4")
        with pytest.raises(RemoteNotFoundError, match="does not exist"):
            check_output_directory(settings, files, missing, tag="job-attempt")
    finally:
        files.close()
