"""A connection to the output's location opened while ffmpeg runs, against a real sshd."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.media import Clips
from tests.support.sshd import SshdProcess
from worker.encode.pipeline import Attempt, encode_job
from worker.jobs import Job
from worker.profiles import Backend
from worker.settings.model import Settings
from worker.settings.staging import LocalLocation, StagingSettings
from worker.staging import outgoing as staging_out
from worker.staging.api import Link, stage_out
from worker.staging.files import Files

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
MIB = 1024 * 1024


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Locations staging_out connects to itself (the real connections, only counted)."""
    names: list[str] = []
    real = staging_out.connect

    def counting(settings: StagingSettings, name: str) -> Files:
        names.append(name)
        return real(settings, name)

    monkeypatch.setattr(staging_out, "connect", counting)
    return names


def ssh_children() -> list[int]:
    """Pids of ssh processes this test process started and that still run.

    A child starts as ``setpriv --pdeathsig KILL -- ssh ...`` and becomes ssh only when
    setpriv execs it, so the command line, not the process name, says what it is.
    """
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and any(Path(os.fsdecode(a)).name == "ssh" for a in argv):
            found.append(int(stat.parent.name))
    return found


def wait_for_session(sshd: SshdProcess) -> None:
    deadline = time.monotonic() + 10
    while not sshd.session_pids():
        assert time.monotonic() < deadline, "the early connection never reached sshd"
        time.sleep(0.02)


def test_a_push_takes_the_link_opened_before_it(
    settings: StagingSettings, remote: Path, make_file: MakeFile, tmp_path: Path, opened: list[str]
) -> None:
    data = make_file(tmp_path / "out.mp4", 2 * MIB)
    with Link(settings, "rec") as link:
        stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", link=link).commit()
    assert (remote / "out.mp4").read_bytes() == data
    assert opened == []
    assert ssh_children() == []


def test_a_link_that_died_meanwhile_is_replaced_by_a_fresh_connection(
    sshd: SshdProcess,
    settings: StagingSettings,
    remote: Path,
    make_file: MakeFile,
    tmp_path: Path,
    opened: list[str],
) -> None:
    data = make_file(tmp_path / "out.mp4", MIB)
    with Link(settings, "rec") as link:
        wait_for_session(sshd)
        sshd.kill_sessions()  # the recorder dropped the link while ffmpeg ran
        stage_out(settings, tmp_path / "out.mp4", "sftp://rec/out.mp4", link=link).commit()
    assert (remote / "out.mp4").read_bytes() == data
    assert opened == ["rec"]


def test_a_link_nobody_takes_is_closed_and_local_locations_get_none(
    sshd: SshdProcess, remote: Path, tmp_path: Path
) -> None:
    base = make_settings(sshd, remote, tmp_path / "scratch")
    here = LocalLocation(path=tmp_path)
    settings = base.model_copy(update={"locations": {**base.locations, "here": here}})
    with Link(settings, "rec"):
        assert len(ssh_children()) == 1
    assert ssh_children() == []
    assert Link(settings, "here").take() is None
    assert Link(settings, "").take() is None


def test_a_remote_jobs_output_is_pushed_over_the_connection_its_pre_encode_check_opened(
    sshd: SshdProcess, clips: Clips, tmp_path: Path, opened: list[str]
) -> None:
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    source = Path(shutil.copy2(clips.isdb_1080i, recorder / "深夜 アニメ 1.ts"))
    location = {
        "kind": "sftp", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "key_file": str(sshd.user_key), "known_hosts": str(sshd.known_hosts),
        "root": str(recorder),
    }  # fmt: skip
    settings = Settings(
        state_dir=tmp_path / "state",
        staging={"scratch_dir": str(tmp_path / "scratch"), "min_free_mb": 0,
                 "locations": {"recorder": location}},
    )  # fmt: skip
    job = Job.create(f"sftp://recorder/{source.name}", "h264-x264")
    result = encode_job(job, Attempt(settings=settings, backends=[Backend.X264]))
    delivered = recorder / f"{source.stem}.mp4"
    assert delivered.stat().st_size == result.size_bytes
    assert opened == [], "the push used the connection opened before the encode"
    assert ssh_children() == []
