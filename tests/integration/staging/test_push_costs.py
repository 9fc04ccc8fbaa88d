"""What a push costs beyond its bytes: connections, fsyncs, writes in flight (real sshd)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.sshd import SshdProcess
from worker.settings.staging import StagingSettings
from worker.staging import outgoing as staging_out
from worker.staging.api import stage_out
from worker.staging.files import Files
from worker.staging.sftp import openssh_files as sftp_openssh
from worker.staging.sftp import wire as sftp_wire

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
MIB = 1024 * 1024


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Files]:
    """Every connection staging_out opens, in order (the real ones, only counted)."""
    sessions: list[Files] = []
    real = staging_out.connect

    def counting(settings: StagingSettings, name: str) -> Files:
        files = real(settings, name)
        sessions.append(files)
        return files

    monkeypatch.setattr(staging_out, "connect", counting)
    return sessions


def test_a_push_and_its_commit_share_one_connection(
    settings: StagingSettings,
    remote: Path,
    make_file: MakeFile,
    tmp_path: Path,
    opened: list[Files],
) -> None:
    data = make_file(tmp_path / "out.mp4", 3 * MIB + 7)
    pending = stage_out(settings, tmp_path / "out.mp4", "sftp://rec/番組 1.mp4")
    assert not (remote / "番組 1.mp4").exists()
    pending.commit()
    assert (remote / "番組 1.mp4").read_bytes() == data
    assert [p.name for p in remote.iterdir()] == ["番組 1.mp4"]
    assert len(opened) == 1
    session = opened[0]
    assert isinstance(session, sftp_openssh.OpenSshSession)
    assert session.child.wait(5) is not None, "the commit closes the connection it used"


def test_a_commit_after_the_link_dropped_reconnects_and_renames(
    sshd: SshdProcess,
    settings: StagingSettings,
    remote: Path,
    make_file: MakeFile,
    tmp_path: Path,
    opened: list[Files],
) -> None:
    data = make_file(tmp_path / "out.mp4", 2 * MIB)
    pending = stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4")
    assert sshd.kill_sessions() >= 1  # the held connection dies while the caller verifies
    pending.commit()
    assert (remote / "out.mp4").read_bytes() == data
    assert len(opened) == 2


def test_an_uncommitted_push_is_removed_over_the_held_connection(
    settings: StagingSettings,
    remote: Path,
    make_file: MakeFile,
    tmp_path: Path,
    opened: list[Files],
) -> None:
    make_file(tmp_path / "out.mp4", MIB)
    with stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4") as pending:
        assert pending.files is not None
    assert list(remote.iterdir()) == []
    assert len(opened) == 1
    assert pending.files is None


def test_a_long_push_is_fsynced_along_the_way_and_at_the_end(
    sshd: SshdProcess,
    remote: Path,
    make_file: MakeFile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sftp_openssh, "SYNC_EVERY", MIB)
    sent: list[str] = []
    in_flight: set[int] = set()
    most = [0]
    real_send, real_answer = sftp_wire.Wire.send, sftp_wire.Wire.answer

    def send(wire: sftp_wire.Wire, kind: int, *fields: sftp_wire.Field) -> int:
        rid = real_send(wire, kind, *fields)
        if kind == sftp_wire.WRITE:
            sent.append("write")
            in_flight.add(rid)
            most[0] = max(most[0], len(in_flight))
        elif kind == sftp_wire.EXTENDED and bytes(fields[0]).endswith(b"fsync@openssh.com"):
            sent.append("fsync")
        return rid

    def answer(wire: sftp_wire.Wire, rid: int) -> tuple[int, sftp_wire.Chunk]:
        in_flight.discard(rid)
        return real_answer(wire, rid)

    monkeypatch.setattr(sftp_wire.Wire, "send", send)
    monkeypatch.setattr(sftp_wire.Wire, "answer", answer)
    settings = make_settings(sshd, remote, tmp_path / "scratch", max_requests=64)
    data = make_file(tmp_path / "out.mp4", 5 * MIB + 3)
    stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4").commit()
    assert (remote / "out.mp4").read_bytes() == data
    assert sent[-1] == "fsync", "the last request before the rename is an fsync of all of it"
    assert sent[:-1].count("fsync") >= 4, "fsyncs go out between the writes, not only at the end"
    # About 1 MiB of writes in flight, however many requests the settings allow.
    assert most[0] * 255 * 1024 <= sftp_openssh.WRITE_AHEAD
