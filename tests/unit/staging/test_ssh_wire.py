"""The OpenSSH transport's pure parts: its argv, reading ssh's stderr, SFTP encoding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.settings.staging import NAME_PATTERN, SftpLocation, StagingSettings
from worker.staging.connection import openssh_unusable
from worker.staging.errors import BadUriError
from worker.staging.sftp import wire as w
from worker.staging.sftp.common import not_sftp_reason, shown_bytes
from worker.staging.sftp.ssh_command import diagnose, sftp_argv
from worker.staging.uri import resolve


def location(**extra: object) -> SftpLocation:
    """An SFTP location as the config would give it."""
    data: dict[str, object] = {
        "kind": "sftp",
        "host": "rec.example",
        "port": 2222,
        "user": "kamado",
        "key_file": "/etc/kamado/id_ed25519",
        "known_hosts": "/etc/kamado/known_hosts",
    }
    data.update(extra)
    return SftpLocation.model_validate(data)


def test_ssh_argv_pins_strict_checking_and_opens_only_the_sftp_subsystem() -> None:
    argv = sftp_argv("/usr/bin/ssh", location())
    assert argv[:3] == ["/usr/bin/ssh", "-F", "/dev/null"]
    assert "-s" in argv and argv[-3:] == ["--", "rec.example", "sftp"]
    options = {argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"}
    assert {
        "StrictHostKeyChecking=yes",
        "UserKnownHostsFile=/etc/kamado/known_hosts",
        "GlobalKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "IdentityFile=/etc/kamado/id_ed25519",
        "BatchMode=yes",
        "UpdateHostKeys=no",
        "Port=2222",
        "User=kamado",
    } <= options


@pytest.mark.parametrize(
    ("stderr", "failure"),
    [
        (
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested "
            "strict checking.\nHost key verification failed.",
            "host key",
        ),
        (
            "@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "@@@@@@@@@@@@\nHost key verification failed.",
            "host key changed",
        ),
        ("kamado@127.0.0.1: Permission denied (publickey).", "auth"),
        ("subsystem request failed on channel 0", "subsystem"),
        ("ssh: connect to host 127.0.0.1 port 9: Connection refused", "unreachable"),
        ("", "unreachable"),
    ],
)
def test_ssh_stderr_is_read_as_the_right_failure(stderr: str, failure: str) -> None:
    found = diagnose(stderr, 255)
    assert found.failure == failure
    assert found.reason and "@@@" not in found.reason


def test_only_a_missing_ssh_or_an_odd_key_path_keeps_a_location_on_paramiko() -> None:
    assert openssh_unusable(location(), "/usr/bin/ssh") == ""
    assert "no OpenSSH" in openssh_unusable(location(), None)
    assert openssh_unusable(location(key_passphrase="x"), "/usr/bin/ssh") == ""
    for odd in ("/keys/my key", "/keys/%d", "/keys/${HOME}", "/keys/a#b"):
        assert "key_file" in openssh_unusable(location(key_file=odd), "/usr/bin/ssh")


@pytest.mark.parametrize("name", ["録画/ニュース 7時.ts", "line\nbreak", "$(rm -rf x) `id`"])
def test_names_travel_as_length_prefixed_bytes_and_come_back_intact(name: str) -> None:
    encoded = w.string(name) + w.u64(2**40) + w.u32(7)
    reader = w.Reader(encoded)
    assert reader.text() == name and reader.u64() == 2**40 and reader.u32() == 7


def test_undecodable_bytes_in_a_name_survive_the_round_trip() -> None:
    name = os.fsdecode(b"rec-\xff\xfe.ts")
    assert w.Reader(w.string(name)).text() == name


def test_a_status_answer_becomes_an_error_with_its_errno() -> None:
    body = w.u32(w.FX_NO_SUCH_FILE) + w.string("No such file") + w.string("")
    with pytest.raises(w.StatusError) as caught:
        w.expect((w.STATUS, body), w.ATTRS)
    assert caught.value.errno is not None and caught.value.code == w.FX_NO_SUCH_FILE
    w.ok((w.STATUS, w.u32(w.FX_OK) + w.string("") + w.string("")))


def test_a_closed_pipe_is_a_lost_link(tmp_path: Path) -> None:
    rfd, wfd = os.pipe()
    os.close(wfd)
    other_r, other_w = os.pipe()
    try:
        wire = w.Wire(rfd, other_w, timeout=1)
        with pytest.raises(w.LinkLost):
            wire.call(w.STAT, w.string("/x"))
    finally:
        for fd in (rfd, other_r, other_w):
            os.close(fd)


@given(sent=st.binary(max_size=600), user=st.from_regex(r"[a-z_][a-z0-9_-]{0,30}", fullmatch=True))
def test_whatever_a_server_sends_instead_of_sftp_is_shown_as_one_bounded_line(
    sent: bytes, user: str
) -> None:
    reason = not_sftp_reason(user, sent)
    assert "\n" not in reason and "\r" not in reason and "\x00" not in reason
    assert f"Match User {user}" in reason and "ForceCommand internal-sftp" in reason
    shown = shown_bytes(sent)
    assert len(shown) <= 200
    assert shown == shown.strip()


def test_a_shell_refusal_read_off_a_real_pipe_is_not_sftp_with_its_text() -> None:
    read, write = os.pipe()
    sink_read, sink_write = os.pipe()
    os.write(write, b"This account is currently not available.\n")
    os.close(write)
    wire = w.Wire(read, sink_write, timeout=2)
    with pytest.raises(w.NotSftp) as caught:
        wire.hello(2)
    assert caught.value.sent == b"This account is currently not available.\n"
    for fd in (read, sink_read, sink_write):
        os.close(fd)


@given(name=st.from_regex(NAME_PATTERN, fullmatch=True))
def test_a_job_naming_any_undefined_location_says_which_block_to_define(name: str) -> None:
    with pytest.raises(BadUriError) as caught:
        resolve(StagingSettings(), f"sftp://{name}/recorded/a.ts")
    assert f"define [staging.locations.{name}] on this worker" in str(caught.value)
