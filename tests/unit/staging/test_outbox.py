"""The outbox of verified outputs waiting for a push: kept whole, found only for its output."""

from __future__ import annotations

import os
import time
from pathlib import Path

from worker.staging.outbox import clean_outbox, drop, find, keep, outbox_dir


def verified_file(scratch: Path, data: bytes = b"verified mp4 bytes") -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / ".kamado-job-attempt.mp4"
    path.write_bytes(data)
    return path


def test_a_kept_output_is_found_again_for_the_same_job_and_output(tmp_path: Path) -> None:
    temp = verified_file(tmp_path)
    kept = keep(tmp_path, "j1", temp, output="sftp://rec/a.mp4", sha256="ab", result={"x": 1})
    assert not temp.exists() and kept.path.read_bytes() == b"verified mp4 bytes"
    found = find(tmp_path, "j1", "sftp://rec/a.mp4")
    assert found is not None
    assert (found.size, found.sha256, found.result) == (kept.size, "ab", {"x": 1})


def test_a_kept_output_for_another_output_or_cut_short_is_dropped(tmp_path: Path) -> None:
    keep(tmp_path, "j1", verified_file(tmp_path), output="sftp://rec/a.mp4", sha256="ab", result={})
    assert find(tmp_path, "j1", "sftp://rec/b.mp4") is None
    assert list(outbox_dir(tmp_path).iterdir()) == []
    kept = keep(tmp_path, "j2", verified_file(tmp_path), output="o", sha256="cd", result={})
    os.truncate(kept.path, 3)
    assert find(tmp_path, "j2", "o") is None
    assert list(outbox_dir(tmp_path).iterdir()) == []


def test_old_kept_outputs_are_cleaned_and_drop_removes_one(tmp_path: Path) -> None:
    old = keep(tmp_path, "old", verified_file(tmp_path), output="o", sha256="1", result={})
    keep(tmp_path, "new", verified_file(tmp_path), output="o", sha256="2", result={})
    week_ago = time.time() - 8 * 86400
    for path in outbox_dir(tmp_path).glob("old.*"):
        os.utime(path, (week_ago, week_ago))
    assert clean_outbox(tmp_path) == 2
    assert not old.path.exists() and find(tmp_path, "new", "o") is not None
    drop(tmp_path, "new")
    assert list(outbox_dir(tmp_path).iterdir()) == []
