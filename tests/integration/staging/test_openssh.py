"""The OpenSSH transport (``ssh -s sftp``) and the paramiko fallback, against a real sshd.

What every ``Files`` implementation does alike is in test_files_contract.py; this file
holds what is particular to each transport (options, host keys, passphrases, resumes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.sshd import PASSPHRASE, SshdProcess, keygen, paramiko_key
from worker.process import group_alive
from worker.settings.staging import StagingSettings
from worker.staging.api import stage_out
from worker.staging.connection import connect
from worker.staging.errors import HostKeyError, LocationError, UnreachableError
from worker.staging.pull import pull
from worker.staging.sftp.openssh_files import OpenSshSession
from worker.staging.sftp.paramiko_files import SftpSession
from worker.staging.sftp.wire import LinkLost

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
MIB = 1024 * 1024


def locked(sshd: SshdProcess, remote: Path, tmp_path: Path, **extra: object) -> StagingSettings:
    """Settings whose key has a passphrase (OpenSSH asks SSH_ASKPASS for it)."""
    location = {"key_file": str(sshd.locked_key), "key_passphrase": PASSPHRASE}
    return make_settings(sshd, remote, tmp_path / "scratch", location=location, **extra)


def test_sftp_locations_go_through_openssh_with_strict_pinned_options(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    settings = make_settings(sshd, remote, tmp_path / "scratch")
    files = connect(settings, "rec")
    try:
        assert isinstance(files, OpenSshSession)
        argv = files.child.argv
        for option in (
            "StrictHostKeyChecking=yes",
            f"UserKnownHostsFile={sshd.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            f"IdentityFile={sshd.user_key}",
            "UpdateHostKeys=no",
        ):
            assert option in argv
        assert argv[argv.index("-F") + 1] == "/dev/null"
        assert argv[-2:] == ["127.0.0.1", "sftp"], "the sftp subsystem, never a shell command"
        pgid = files.child.pid
    finally:
        files.close()
    assert not group_alive(pgid), "ssh's process group is gone with the session"


def test_openssh_itself_refuses_an_unknown_host_key(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    settings = make_settings(
        sshd, remote, tmp_path / "scratch", location={"known_hosts": str(empty)}
    )
    with pytest.raises(HostKeyError) as caught:
        connect(settings, "rec")
    assert isinstance(caught.value.__context__, LinkLost), "ssh ended before SFTP began"
    assert "SHA256:" in str(caught.value) and not caught.value.changed
    assert empty.read_text() == "", "known_hosts is never written"


def test_openssh_refuses_a_changed_host_key_and_says_so(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    other = keygen(tmp_path / "other_host_key")
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    settings = make_settings(
        sshd, remote, tmp_path / "scratch", location={"known_hosts": str(wrong)}
    )
    with pytest.raises(HostKeyError) as caught:
        connect(settings, "rec")
    assert isinstance(caught.value.__context__, LinkLost)
    assert caught.value.changed and "CHANGED" in str(caught.value)


def test_openssh_pull_resumes_at_the_acknowledged_byte_after_a_kill(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(remote / "ニュース 7時.ts", 8 * MIB)
    seen: list[int] = []

    def kill_once(done: int, total: int) -> None:
        seen.append(done)
        if done >= 2 * MIB and len(seen) > 1 and seen[-2] < 2 * MIB:
            sshd.kill_sessions()

    settings = make_settings(sshd, remote, tmp_path / "scratch", max_requests=4)
    dest = tmp_path / "scratch" / "pulled.ts"
    source = pull(settings, "sftp://rec/ニュース 7時.ts", dest, on_progress=kill_once)
    assert dest.read_bytes() == data
    assert source.sha256 == hashlib.sha256(data).hexdigest()
    assert seen == sorted(seen), "the second connection went on from where the first stopped"


def test_a_silent_link_is_dropped_after_io_timeout(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    make_file(remote / "a.ts", 100_000)
    settings = make_settings(sshd, remote, tmp_path / "scratch", location={"io_timeout": 1})
    files = connect(settings, "rec")
    stopped = sshd.session_pids()
    try:
        for pid in stopped:  # the host hangs: no answers, no disconnect
            os.kill(pid, signal.SIGSTOP)
        with pytest.raises(UnreachableError) as caught:
            files.stat(str(remote / "a.ts"))
        assert "connection lost" in str(caught.value) and caught.value.transient
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        files.close()


def test_a_key_with_a_passphrase_goes_through_openssh_unlocked_by_askpass(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = locked(sshd, remote, tmp_path)
    data = make_file(remote / "a.ts", 3 * MIB)
    files = connect(settings, "rec")
    try:
        assert isinstance(files, OpenSshSession)
        assert "BatchMode=no" in files.child.argv
        assert not any(PASSPHRASE in arg for arg in files.child.argv)
        assert files.listdir(str(remote)) == ["a.ts"]  # authenticated with the locked key
    finally:
        files.close()
    source = pull(settings, "sftp://rec/a.ts", tmp_path / "scratch" / "a")
    assert source.sha256 == hashlib.sha256(data).hexdigest()


def test_a_wrong_passphrase_is_one_clear_error_before_ssh_runs(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    location = {"key_file": str(sshd.locked_key), "key_passphrase": "not it"}
    settings = make_settings(sshd, remote, tmp_path / "scratch", location=location)
    with pytest.raises(LocationError) as caught:
        connect(settings, "rec")
    assert str(sshd.locked_key) in str(caught.value)


def on_paramiko(
    sshd: SshdProcess, remote: Path, tmp_path: Path, **extra: object
) -> StagingSettings:
    """Settings whose key path holds a character ssh would expand: paramiko carries them."""
    location = {"key_file": str(paramiko_key(sshd, tmp_path / "keys"))}
    return make_settings(sshd, remote, tmp_path / "scratch", location=location, **extra)


def test_a_key_path_ssh_would_expand_falls_back_to_paramiko_and_says_so(
    sshd: SshdProcess,
    remote: Path,
    make_file: MakeFile,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = on_paramiko(sshd, remote, tmp_path)
    data = make_file(remote / "a.ts", 3 * MIB)
    with caplog.at_level(logging.WARNING, logger="kamado.staging"):
        files = connect(settings, "rec")
    files.close()
    assert isinstance(files, SftpSession)
    assert "paramiko" in caplog.text and "key_file" in caplog.text
    source = pull(settings, "sftp://rec/a.ts", tmp_path / "scratch" / "a")
    assert source.sha256 == hashlib.sha256(data).hexdigest()


def test_the_paramiko_fallback_still_resumes_a_push_after_a_kill(
    sshd: SshdProcess, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    settings = on_paramiko(sshd, remote, tmp_path, max_requests=4)
    data = make_file(tmp_path / "out.mp4", 6 * MIB)
    killed: list[int] = []

    def kill_once(done: int, total: int) -> None:
        if done >= 2 * MIB and not killed:
            killed.append(sshd.kill_sessions())

    pending = stage_out(
        settings,
        tmp_path / "out.mp4",
        "sftp://rec/out.mp4",
        on_progress=kill_once,
    )
    pending.commit()
    assert killed and killed[0] >= 1
    assert (remote / "out.mp4").read_bytes() == data
