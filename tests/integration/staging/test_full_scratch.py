"""A scratch disk that fills up during a pull is an error, never a shorter source."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.staging.conftest import make_settings
from tests.support.sshd import SshdProcess
from worker.staging.errors import StagingError
from worker.staging.pull import pull

pytestmark = pytest.mark.integration

MakeFile = Callable[[Path, int], bytes]
SmallFs = Callable[[str, int], Path]
MIB = 1024 * 1024


def test_scratch_filling_up_during_the_pull_fails_the_pull_and_keeps_no_short_copy(
    sshd: SshdProcess, small_fs: SmallFs, remote: Path, make_file: MakeFile
) -> None:
    # Found by bench/chaos.py: the unbuffered scratch write ignored a short write on a
    # nearly full disk, and a truncated copy went on to ffmpeg as "the recording".
    scratch = small_fs("scratch_filling", 6 * 1024)
    settings = make_settings(sshd, remote, scratch, retries=0)
    make_file(remote / "rec.ts", 4 * MIB)
    filled: list[bool] = []

    def fill_disk(done: int, total: int) -> None:
        if not filled and done >= MIB:  # another program takes the space mid-pull
            filled.append(True)
            with (scratch / "hog").open("wb") as hog:
                try:
                    while True:
                        hog.write(b"\0" * 4096)
                except OSError:
                    pass

    dest = scratch / "src.ts"
    with pytest.raises(StagingError) as caught:
        pull(settings, "sftp://rec/rec.ts", dest, on_progress=fill_disk)
    assert filled, "the disk was never filled"
    assert "space" in str(caught.value).lower(), caught.value
    assert not dest.exists()


def test_a_short_write_on_a_nearly_full_scratch_is_never_taken_for_a_whole_one(
    small_fs: SmallFs,
) -> None:
    from worker.staging.pull import _HashingWriter

    scratch = small_fs("scratch_nearly_full", 1024)
    fs = os.statvfs(scratch)
    (scratch / "hog").write_bytes(b"\0" * (fs.f_bavail * fs.f_frsize - 3 * 4096))
    data = bytes(range(256)) * 256  # 64 KiB: more than is left, so write(2) is short
    with (scratch / "src.ts.part").open("wb", buffering=0) as out:
        writer = _HashingWriter(out)
        with pytest.raises(OSError, match="No space left"):
            writer.write(data)
