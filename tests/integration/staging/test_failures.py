"""Refused host keys and keys, dropped connections and full disks, against a real sshd."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.sshd import SshdProcess, keygen
from worker.settings.staging import StagingSettings
from worker.staging.api import stage_in, stage_out
from worker.staging.errors import (
    AuthenticationError,
    HostKeyError,
    NoSpaceError,
    UnreachableError,
)
from worker.staging.pull import pull

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
SmallFs = Callable[[str, int], Path]
MIB = 1024 * 1024


class Killer:
    """A progress callback that drops every SSH connection once, after ``after`` bytes."""

    def __init__(self, sshd: SshdProcess, after: int) -> None:
        self.sshd = sshd
        self.after = after
        self.killed = 0

    def __call__(self, done: int, total: int) -> None:
        if done >= self.after and not self.killed:
            self.killed = self.sshd.kill_sessions()


def dropping(sshd: SshdProcess, remote: Path, tmp_path: Path, **extra: object) -> StagingSettings:
    """Settings with few requests in flight, so data after a kill needs a new connection."""
    return make_settings(sshd, remote, tmp_path / "scratch", max_requests=4, **extra)


def test_unknown_host_key_is_refused_with_the_fingerprint_and_fix(
    sshd: SshdProcess, remote: Path, tmp_path: Path, make_file: MakeFile
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    settings = make_settings(
        sshd, remote, tmp_path / "scratch", location={"known_hosts": str(empty)}
    )
    make_file(remote / "a.ts", 10)
    with pytest.raises(HostKeyError) as caught, stage_in(settings, "sftp://rec/a.ts"):
        pass
    message = str(caught.value)
    assert "not in" in message and "SHA256:" in message and "ssh-keyscan" in message
    assert not caught.value.changed


def test_changed_host_key_is_refused(
    sshd: SshdProcess, remote: Path, tmp_path: Path, make_file: MakeFile
) -> None:
    other = keygen(tmp_path / "other_host_key")
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    settings = make_settings(
        sshd, remote, tmp_path / "scratch", location={"known_hosts": str(wrong)}
    )
    make_file(remote / "a.ts", 10)
    with pytest.raises(HostKeyError) as caught, stage_in(settings, "sftp://rec/a.ts"):
        pass
    assert "CHANGED" in str(caught.value) and caught.value.changed
    assert "ssh-keygen -R" in str(caught.value)


def test_a_key_the_host_does_not_accept_is_an_authentication_error(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    stranger = keygen(tmp_path / "stranger")
    settings = make_settings(
        sshd, remote, tmp_path / "scratch", location={"key_file": str(stranger)}
    )
    with pytest.raises(AuthenticationError) as caught, stage_in(settings, "sftp://rec/a.ts"):
        pass
    assert "authorized_keys" in str(caught.value)


def test_a_closed_port_is_unreachable_and_transient(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    from tests.support.redis_proc import free_port

    settings = make_settings(
        sshd, remote, tmp_path / "scratch", location={"port": free_port()}, retries=0
    )
    with pytest.raises(UnreachableError) as caught, stage_in(settings, "sftp://rec/a.ts"):
        pass
    assert caught.value.transient and "cannot connect" in str(caught.value)


def test_pull_resumes_after_the_connection_is_killed_mid_transfer(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(remote / "big.ts", 8 * MIB)
    kill = Killer(sshd, after=2 * MIB)
    dest = tmp_path / "scratch" / "big.ts"
    source = pull(dropping(sshd, remote, tmp_path), "sftp://rec/big.ts", dest, on_progress=kill)
    assert kill.killed >= 1
    assert dest.read_bytes() == data
    assert source.sha256 == hashlib.sha256(data).hexdigest()


def test_stream_resumes_at_the_same_byte_after_the_connection_is_killed(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(remote / "big.ts", 6 * MIB)
    settings = dropping(sshd, remote, tmp_path)
    kill = Killer(sshd, after=3 * MIB)
    with stage_in(settings, "sftp://rec/big.ts", stream=True, on_progress=kill) as source:
        got = source.path.read_bytes()
        source.finish(timeout=30)
    assert kill.killed >= 1
    assert got == data


def test_push_resumes_after_the_connection_is_killed_mid_transfer(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(tmp_path / "out.mp4", 8 * MIB)
    settings = dropping(sshd, remote, tmp_path)
    kill = Killer(sshd, after=3 * MIB)
    stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", on_progress=kill).commit()
    assert kill.killed >= 1
    assert (remote / "out.mp4").read_bytes() == data


def test_a_link_that_keeps_dropping_gives_up_with_a_transient_error(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    make_file(remote / "big.ts", 4 * MIB)
    settings = dropping(sshd, remote, tmp_path, retries=1)

    def always_kill(done: int, total: int) -> None:
        sshd.kill_sessions()

    with pytest.raises(UnreachableError) as caught:
        pull(settings, "sftp://rec/big.ts", tmp_path / "scratch" / "x", on_progress=always_kill)
    assert caught.value.transient and "gave up after 2 attempts" in str(caught.value)


def test_remote_disk_too_small_is_refused_before_the_push(
    sshd: SshdProcess, small_fs: SmallFs, make_file: MakeFile, tmp_path: Path
) -> None:
    full = small_fs("remote_small", 1024)
    settings = make_settings(sshd, full, tmp_path / "scratch")
    make_file(tmp_path / "out.mp4", 2 * MIB)
    with pytest.raises(NoSpaceError) as caught:
        stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4")
    assert "MiB free at the destination" in str(caught.value)
    assert list(full.iterdir()) == []


def test_remote_disk_filling_up_during_the_push_is_reported_and_cleaned(
    sshd: SshdProcess, small_fs: SmallFs, make_file: MakeFile, tmp_path: Path
) -> None:
    full = small_fs("remote_filling", 4096)
    # One write request in flight: the disk fills before the next one is sent, however
    # fast the server wrote the first (with many in flight the whole file could land
    # before the hog starts, and the push would rightly succeed).
    settings = make_settings(sshd, full, tmp_path / "scratch", max_requests=1)
    make_file(tmp_path / "out.mp4", 3 * MIB)
    filled: list[bool] = []

    def fill_disk(done: int, total: int) -> None:
        if not filled:  # another program takes the space once the push has started
            filled.append(True)
            with (full / "hog").open("wb") as hog:
                try:
                    while True:
                        hog.write(b"\0" * 65536)
                except OSError:
                    pass

    with pytest.raises(NoSpaceError) as caught:
        stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", on_progress=fill_disk)
    assert "no space left on the remote disk" in str(caught.value)
    assert sorted(p.name for p in full.iterdir()) == ["hog"]


def test_scratch_too_small_for_the_source_is_refused_before_pulling(
    sshd: SshdProcess, small_fs: SmallFs, remote: Path, make_file: MakeFile
) -> None:
    scratch = small_fs("scratch_small", 1024)
    settings = make_settings(sshd, remote, scratch)
    make_file(remote / "big.ts", 2 * MIB)
    with pytest.raises(NoSpaceError) as caught, stage_in(settings, "sftp://rec/big.ts"):
        pass
    assert "scratch" in str(caught.value) and "staging.scratch_dir" in str(caught.value)
