"""From any damaged state, setup recorder converges on the same tree; a dry run changes nothing."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.setup_recorder import RecorderOptions, setup_recorder
from tests.support.accounts import accounts, is_root
from worker.setup.system import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)"),
]

ROOT = Path(__file__).resolve().parents[3]


def tree(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    found = {}
    for path in sorted(root.rglob("*")):
        st_ = path.lstat()
        content = os.readlink(path).encode() if path.is_symlink() else (
            path.read_bytes() if path.is_file() else b""
        )  # fmt: skip
        found[str(path.relative_to(root))] = (st_.st_uid, st_.st_gid, st_.st_mode, content)
    return found


def options(account: str) -> RecorderOptions:
    return RecorderOptions(
        recorder="chinachu", recorder_user="", broker_host="192.168.1.10", broker_port=6379,
        listen="192.168.1.10", state_dir="/var/lib/kamado", binary="/opt/kamado/venv/bin/kamado",
        redis_template=ROOT / "deploy/redis/kamado.conf", account=account,
    )  # fmt: skip


@pytest.fixture(scope="module")
def converged() -> Iterator[tuple[str, Path, dict[str, tuple[int, int, int, bytes]]]]:
    """An account and the tree a first real run wrote (the state every rerun must reach)."""
    with accounts("kmd-conv") as (account,):
        root = Path(tempfile.mkdtemp(prefix="kamado-converge-"))
        try:
            setup_recorder(System(root), options(account))
            yield account, root, tree(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


# The box's own directories, which setup creates if missing but never manages.
SYSTEM_DIRS = {"etc", "etc/redis", "usr", "usr/local", "usr/local/bin", "var", "var/lib"}
DAMAGE = st.lists(
    st.tuples(st.sampled_from(["chmod", "delete", "chown-root"]), st.integers(0, 10_000),
              st.integers(0, 0o7777)),
    min_size=1, max_size=6,
)  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(damage=DAMAGE)
def test_any_damage_is_shown_by_a_dry_run_untouched_and_repaired_by_a_real_run(
    converged: tuple[str, Path, dict[str, tuple[int, int, int, bytes]]],
    damage: list[tuple[str, int, int]],
) -> None:
    account, root, want = converged
    work = Path(tempfile.mkdtemp(prefix="kamado-converge-"))
    try:
        copy = work / "root"
        shutil.copytree(root, copy, symlinks=True)
        for path in sorted(copy.rglob("*"), reverse=True):  # copytree does not keep owners
            st_ = (root / path.relative_to(copy)).lstat()
            os.lchown(path, st_.st_uid, st_.st_gid)
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(st_.st_mode))
        for action, pick, mode in damage:
            entries = sorted(
                p
                for p in copy.rglob("*")
                if not p.is_symlink() and str(p.relative_to(copy)) not in SYSTEM_DIRS
            )
            if not entries:
                break
            target = entries[pick % len(entries)]
            if action == "chmod":
                target.chmod(mode | (0o700 if target.is_dir() else 0))
            elif action == "chown-root":
                os.chown(target, 0, 0)
            elif target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        damaged = tree(copy)
        dry = System(copy, dry_run=True)
        setup_recorder(dry, options(account))
        assert tree(copy) == damaged
        assert any(a.changed for a in dry.actions) == (damaged != want)
        setup_recorder(System(copy), options(account))
        repaired = tree(copy)
        # Secrets a deletion lost are made anew; everything else is as the first run left it.
        secret = {"etc/kamado/kamado.toml", "etc/redis/kamado.conf", "etc/kamado/kamado.env"}
        assert {k: v for k, v in repaired.items() if k not in secret} == {
            k: v for k, v in want.items() if k not in secret
        }
        assert {k: v[:3] for k, v in repaired.items() if k in secret} == {
            k: v[:3] for k, v in want.items() if k in secret
        }
        again = System(copy)
        setup_recorder(again, options(account))
        assert not [a for a in again.actions if a.changed]
    finally:
        shutil.rmtree(work, ignore_errors=True)
