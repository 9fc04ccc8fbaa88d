"""The doctor's "may this user read/write it" answers what the kernel answers for that user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.accounts import accounts, add_user, is_root
from worker.doctor.access import blocked

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)"),
]


@pytest.fixture(scope="module")
def people() -> Iterator[tuple[str, str, Path]]:
    """A user, a second user whose group the first is in, and a directory all may enter."""
    with accounts("kmd-me", "kmd-peer") as (me, peer):
        add_user(me)
        add_user(peer)
        subprocess.run(["usermod", "-aG", peer, me], check=True, timeout=30)
        box = Path(tempfile.mkdtemp(prefix="kamado-test-", dir="/run"))
        box.chmod(0o755)
        try:
            yield me, peer, box
        finally:
            shutil.rmtree(box, ignore_errors=True)


def kernel_says(user: str, flag: str, path: Path) -> bool:
    return (
        subprocess.run(
            ["runuser", "-u", user, "--", "test", flag, str(path)], timeout=30
        ).returncode
        == 0
    )


OWNERS = st.sampled_from(["root", "me", "peer"])
MODES = st.integers(min_value=0, max_value=0o777)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dir_mode=MODES, dir_owner=OWNERS, dir_group=OWNERS, mode=MODES, owner=OWNERS, group=OWNERS)
def test_blocked_agrees_with_the_kernel_for_every_owner_group_and_mode(
    people: tuple[str, str, Path],
    dir_mode: int,
    dir_owner: str,
    dir_group: str,
    mode: int,
    owner: str,
    group: str,
) -> None:
    me, peer, box = people
    names = {"root": "root", "me": me, "peer": peer}
    directory = box / "d"
    directory.mkdir(exist_ok=True)
    target = directory / "f"
    target.touch(exist_ok=True)
    shutil.chown(directory, names[dir_owner], names[dir_group])
    shutil.chown(target, names[owner], names[group])
    os.chmod(directory, dir_mode)
    os.chmod(target, mode)
    for want, flag in (("r", "-r"), ("w", "-w")):
        ours = blocked(me, target, want) is None
        assert ours == kernel_says(me, flag, target), (want, oct(dir_mode), oct(mode))
