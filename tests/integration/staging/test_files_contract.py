"""One suite over every implementation of the staging ``Files`` interface.

The same assertions run on the local file system (:class:`LocalFiles`), on the OpenSSH
transport and on the paramiko fallback, both against the real sshd of the staging tests,
so the three stay interchangeable behind ``connect``: same results, same errors.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.staging.conftest import on_transport
from tests.support.sshd import SshdProcess
from worker.staging.connection import connect
from worker.staging.errors import (
    LocationError,
    OutputExistsError,
    RemoteNotFoundError,
    TransferError,
)
from worker.staging.files import Chunk, Files, TransferProgress
from worker.staging.local import LocalFiles
from worker.staging.sftp.openssh_files import OpenSshSession
from worker.staging.sftp.paramiko_files import SftpSession

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
MIB = 1024 * 1024
IMPLEMENTATIONS = {"local": LocalFiles, "openssh": OpenSshSession, "paramiko": SftpSession}
HOSTILE_NAMES = ["line\nbreak.ts", "$(touch pwned) `id`.ts", "録画 'q' \"qq\".ts", "-rf"]


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def files(request: pytest.FixtureRequest, remote: Path, tmp_path: Path) -> Iterator[Files]:
    """A ``Files`` of the kind the parameter names, seeing ``remote`` at its own path."""
    if request.param == "local":
        opened: Files = LocalFiles("nas")
    else:
        sshd: SshdProcess = request.getfixturevalue("sshd")
        opened = connect(on_transport(request.param, sshd, remote, tmp_path), "rec")
    assert isinstance(opened, IMPLEMENTATIONS[request.param])
    yield opened
    opened.close()


def read_all(files: Files, path: Path, size: int, offset: int = 0) -> tuple[bytes, int]:
    """The bytes ``read_to`` delivers from ``offset`` to ``size``, and the progress it counted."""
    got = bytearray()
    progress = TransferProgress(offset, size)
    files.read_to(str(path), got.extend, progress, offset=offset, size=size)
    return bytes(got), progress.done


def test_stat_gives_the_size_mtime_and_type_of_files_and_directories(
    files: Files, remote: Path, make_file: MakeFile
) -> None:
    make_file(remote / "録画.ts", 12345)
    os.utime(remote / "録画.ts", (1_700_000_000, 1_700_000_000))
    st = files.stat(str(remote / "録画.ts"))
    assert (st.size, st.mtime, st.is_dir) == (12345, 1_700_000_000, False)
    assert files.stat(str(remote)).is_dir


def test_a_missing_path_is_remote_not_found_naming_location_and_path_for_every_call(
    files: Files, remote: Path
) -> None:
    gone = str(remote / "ない.ts")
    calls: dict[str, Callable[[], object]] = {
        "stat": lambda: files.stat(gone),
        "listdir": lambda: files.listdir(gone),
        "remove": lambda: files.remove(gone),
        "rename": lambda: files.rename(gone, str(remote / "b.ts")),
        "read_to": lambda: files.read_to(gone, print, TransferProgress(), offset=0, size=1),
        "write_from": lambda: files.write_from(
            io.BytesIO(b"x"), str(remote / "no dir" / "a.ts"), TransferProgress(), offset=0, size=1
        ),
    }
    for call, run in calls.items():
        with pytest.raises(RemoteNotFoundError) as caught:
            run()
        error = caught.value
        assert error.location == files.name and not error.transient, call
        assert repr(files.name) in str(error) and "no such file" in str(error), call
        assert error.path in (gone, str(remote / "no dir" / "a.ts")), call
    assert list(remote.iterdir()) == []


def test_bytes_written_are_the_bytes_read_with_progress_counted_to_the_end(
    files: Files, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(tmp_path / "out.mp4", 3 * MIB + 17)
    seen: list[tuple[int, int]] = []
    progress = TransferProgress(0, len(data), lambda done, total: seen.append((done, total)))
    with (tmp_path / "out.mp4").open("rb") as source:
        files.write_from(source, str(remote / "out.mp4"), progress, offset=0, size=len(data))
    assert (remote / "out.mp4").read_bytes() == data
    assert progress.done == len(data) and seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert read_all(files, remote / "out.mp4", len(data)) == (data, len(data))


def test_a_write_from_an_offset_keeps_what_is_before_it_and_cuts_what_is_after(
    files: Files, remote: Path, make_file: MakeFile, tmp_path: Path
) -> None:
    data = make_file(tmp_path / "out.mp4", 2 * MIB)
    half = MIB + 3
    (remote / "out.mp4").write_bytes(data[:half] + b"stale tail of an older attempt" * 1000)
    with (tmp_path / "out.mp4").open("rb") as source:
        files.write_from(
            source, str(remote / "out.mp4"), TransferProgress(half), offset=half, size=len(data)
        )
    assert (remote / "out.mp4").read_bytes() == data


def test_a_read_from_an_offset_delivers_only_the_rest(
    files: Files, remote: Path, make_file: MakeFile
) -> None:
    data = make_file(remote / "a.ts", 2 * MIB + 5)
    got, done = read_all(files, remote / "a.ts", len(data), offset=MIB)
    assert got == data[MIB:] and done == len(data)


def test_a_read_past_the_end_of_a_shorter_file_is_a_transfer_error(
    files: Files, remote: Path, make_file: MakeFile
) -> None:
    make_file(remote / "a.ts", 1000)
    with pytest.raises(TransferError) as caught:
        read_all(files, remote / "a.ts", 5000)
    assert "a.ts" in str(caught.value)


def test_a_cancelled_read_delivers_nothing(files: Files, remote: Path, make_file: MakeFile) -> None:
    make_file(remote / "a.ts", 4 * MIB)
    cancel = threading.Event()
    cancel.set()
    got: list[Chunk] = []
    progress = TransferProgress()
    files.read_to(str(remote / "a.ts"), got.append, progress, offset=0, size=4 * MIB, cancel=cancel)
    assert got == [] and progress.done == 0


def test_rename_replaces_by_default_and_with_replace_false_refuses_a_taken_name(
    files: Files, remote: Path
) -> None:
    (remote / "new.mp4").write_bytes(b"new")
    (remote / "old.mp4").write_bytes(b"old")
    (remote / "other.mp4").write_bytes(b"someone else's")
    with pytest.raises(OutputExistsError) as caught:
        files.rename(str(remote / "new.mp4"), str(remote / "other.mp4"), replace=False)
    assert caught.value.path == str(remote / "other.mp4")
    assert (remote / "other.mp4").read_bytes() == b"someone else's"
    assert (remote / "new.mp4").read_bytes() == b"new", "the caller decides what to remove"
    files.rename(str(remote / "new.mp4"), str(remote / "old.mp4"))
    assert (remote / "old.mp4").read_bytes() == b"new"
    files.rename(str(remote / "old.mp4"), str(remote / "free.mp4"), replace=False)
    assert sorted(p.name for p in remote.iterdir()) == ["free.mp4", "other.mp4"]


def test_hostile_names_are_listed_renamed_and_removed_intact(
    files: Files, remote: Path, tmp_path: Path
) -> None:
    for name in HOSTILE_NAMES:
        files.write_from(io.BytesIO(b"x"), str(remote / name), TransferProgress(), offset=0, size=1)
    assert sorted(files.listdir(str(remote))) == sorted(HOSTILE_NAMES)
    files.rename(str(remote / HOSTILE_NAMES[0]), str(remote / "moved\n.ts"))
    for name in [*HOSTILE_NAMES[1:], "moved\n.ts"]:
        files.remove(str(remote / name))
    assert list(remote.iterdir()) == []
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_realpath_resolves_links_and_dots_and_lexists_sees_a_dangling_link(
    files: Files, remote: Path
) -> None:
    (remote / "sub").mkdir()
    (remote / "sub" / "a.ts").write_bytes(b"a")
    os.symlink("sub", remote / "link")
    os.symlink("nowhere.ts", remote / "dangling.ts")
    assert files.realpath(str(remote / "link" / ".." / "link" / "a.ts")) == str(
        remote.resolve() / "sub" / "a.ts"
    )
    assert files.lexists(str(remote / "dangling.ts"))
    assert files.lexists(str(remote / "link" / "a.ts"))
    assert not files.lexists(str(remote / "nowhere.ts"))


def test_disk_space_is_the_free_and_total_space_of_the_file_system(
    files: Files, remote: Path
) -> None:
    space = files.disk_space(str(remote))
    assert space is not None
    usage = shutil.disk_usage(remote)
    assert space.total == usage.total
    assert abs(space.free - usage.free) < 256 * MIB  # other tests write meanwhile
    assert 0 < space.free <= space.total


def test_every_failure_is_a_location_error_of_that_location(files: Files, remote: Path) -> None:
    (remote / "dir").mkdir()
    with pytest.raises(LocationError) as caught:
        read_all(files, remote / "dir", 10)  # a directory is not a file to read
    assert caught.value.location == files.name
