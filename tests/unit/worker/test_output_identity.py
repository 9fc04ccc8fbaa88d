"""Identity is the real file: symlinked dirs, `..` spellings and hard links are one file."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.errors import SourceError
from worker.jobs import derive_job_id
from worker.outputs.identity import local_identity, real_path, require_regular

NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
NAMES = st.text(NAME_CHARS, min_size=1, max_size=60).filter(lambda s: s not in (".", ".."))
LOCAL = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


@LOCAL
@given(name=NAMES, sub=NAMES)
def test_a_file_through_a_symlinked_dir_or_dotdot_is_the_same_file_and_the_same_job(
    tmp_path: Path, name: str, sub: str
) -> None:
    root = tmp_path / hashlib.sha256(f"{name}/{sub}".encode()).hexdigest()[:12]
    real_dir = root / "videos"
    (real_dir / sub).mkdir(parents=True, exist_ok=True)
    source = real_dir / f"{name}.ts"
    source.write_bytes(b"G" * 188)
    link = root / "link"
    link.symlink_to(real_dir, target_is_directory=True)
    spellings = [str(source), str(link / source.name), f"{real_dir}/{sub}/../{source.name}"]
    identities = {local_identity(s) for s in spellings}
    assert len({i.real for i in identities}) == 1
    assert len({derive_job_id(s, "h264-x264") for s in spellings}) == 1


def test_a_hard_link_is_the_same_file_by_device_and_inode(tmp_path: Path) -> None:
    source = tmp_path / "show.ts"
    source.write_bytes(b"G" * 188)
    os.link(source, tmp_path / "show.mp4")
    assert local_identity(str(tmp_path / "show.mp4")).same_file(local_identity(str(source)))
    assert not local_identity(str(tmp_path / "other.mp4")).same_file(local_identity(str(source)))


def test_a_plain_path_keeps_the_job_id_it_had_before_identities() -> None:
    old = hashlib.sha256(b"/rec/news.ts\0h264-x264").hexdigest()[:20]
    assert derive_job_id("/rec/news.ts", "h264-x264") == old
    assert (
        derive_job_id("sftp://rec/a.ts", "p")
        == hashlib.sha256(b"sftp://rec/a.ts\0p").hexdigest()[:20]
    )


def test_a_symlink_as_the_last_part_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.mp4"
    (tmp_path / "alias.mp4").symlink_to(target)
    assert real_path(str(tmp_path / "alias.mp4")) == str(target)
    assert real_path(str(tmp_path / "absent" / "x.mp4")) == str(tmp_path / "absent" / "x.mp4")


def test_a_fifo_is_refused_from_its_stat_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"live\.ts: is a FIFO \(named pipe\), not a recording"):
        require_regular(str(fifo))
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.mkdir(), "a directory"),
        (lambda p: p.symlink_to("/dev/null"), "a character device"),
    ],
)
def test_directories_and_devices_are_refused_as_sources(
    tmp_path: Path, make: object, words: str
) -> None:
    path = tmp_path / "odd.ts"
    make(path)  # type: ignore[operator]
    with pytest.raises(SourceError, match=f"odd.ts: is {words}, not a recording"):
        require_regular(str(path))
