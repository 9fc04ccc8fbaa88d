"""Shared spool files: modes whatever the umask, root hands what it makes to the directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.spool.access import DIR_MODE, ENTRY_MODE, PRIVATE_DIR_MODE, make_dir, open_file

OWNER = (54321, 54322)  # a uid and gid no account has: only the kernel's checks matter


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def shared_parent(tmp_path: Path, name: str) -> Path:
    parent = tmp_path / name
    parent.mkdir()
    os.chown(parent, *OWNER)
    parent.chmod(DIR_MODE)
    return parent


@settings(max_examples=20, deadline=None)
@given(mask=st.integers(0, 0o777))
def test_entries_and_directories_get_the_shared_modes_whatever_the_umask(
    tmp_path_factory: pytest.TempPathFactory, mask: int
) -> None:
    tmp = tmp_path_factory.mktemp("access")
    parent = shared_parent(tmp, "state")
    old = os.umask(mask)
    try:
        make_dir(parent / "logs")
        fd = open_file(parent / "logs" / "hooks.log", os.O_WRONLY | os.O_APPEND)
        os.close(fd)
    finally:
        os.umask(old)
    for path, mode in ((parent / "logs", DIR_MODE), (parent / "logs" / "hooks.log", ENTRY_MODE)):
        st_ = path.stat()
        assert stat.S_IMODE(st_.st_mode) == mode, (oct(mask), path)
        if os.geteuid() == 0:  # root hands what it creates to the directory's owner
            assert (st_.st_uid, st_.st_gid) == OWNER


def test_a_directory_under_a_private_parent_stays_private(tmp_path: Path, umask: None) -> None:
    make_dir(tmp_path / "one" / "spool")
    assert stat.S_IMODE((tmp_path / "one" / "spool").stat().st_mode) == PRIVATE_DIR_MODE


def test_an_own_file_written_0600_by_an_older_kamado_is_given_the_shared_mode(
    tmp_path: Path, umask: None
) -> None:
    lock = tmp_path / ".drain.lock"
    lock.touch(mode=0o600)
    lock.chmod(0o600)
    os.close(open_file(lock, os.O_RDONLY))
    assert stat.S_IMODE(lock.stat().st_mode) == ENTRY_MODE


def test_an_exclusive_open_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError):
        open_file(tmp_path / "x", os.O_WRONLY, exclusive=True)
