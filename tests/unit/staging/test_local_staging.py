"""Staging between local paths (shared mounts), with real files and no network."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from worker.settings.staging import StagingSettings
from worker.staging.api import check_space, clean_scratch, stage_in, stage_out
from worker.staging.errors import AccessDeniedError, NoSpaceError, RemoteNotFoundError
from worker.staging.sink import BackgroundSink


def settings_for(tmp_path: Path, **extra: object) -> StagingSettings:
    mount = tmp_path / "mnt"
    mount.mkdir(exist_ok=True)
    data: dict[str, object] = {
        "scratch_dir": str(tmp_path / "scratch"),
        "min_free_mb": 0,
        "locations": {
            "nas": {"kind": "local", "path": str(mount), "recorder_path": "/srv/rec"},
            "ro": {"kind": "local", "path": str(mount), "writable": False},
        },
    }
    data.update(extra)
    return StagingSettings.model_validate(data)


def test_a_mapped_local_source_is_used_in_place(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (tmp_path / "mnt" / "a b.ts").write_bytes(b"x" * 10)
    with stage_in(settings, "/srv/rec/a b.ts") as source:
        assert source.path == tmp_path / "mnt" / "a b.ts"
        assert not source.copied and source.size == 10
    assert (tmp_path / "mnt" / "a b.ts").exists(), "the source is never deleted"


def test_a_missing_local_source_names_the_path(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with (
        pytest.raises(RemoteNotFoundError, match="no such file"),
        stage_in(settings, "/srv/rec/none.ts"),
    ):
        pass


def test_output_to_a_read_only_location_is_refused(tmp_path: Path) -> None:
    (tmp_path / "o.mp4").write_bytes(b"o")
    (tmp_path / "ro").mkdir()
    ro = {"kind": "local", "path": str(tmp_path / "ro"), "recorder_path": "/r", "writable": False}
    settings = settings_for(tmp_path, locations={"ro": ro})
    with pytest.raises(AccessDeniedError, match="read-only"):
        stage_out(settings, tmp_path / "o.mp4", "/r/o.mp4")


def test_commit_replaces_an_older_output_atomically(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (tmp_path / "mnt" / "o.mp4").write_bytes(b"old")
    (tmp_path / "o.mp4").write_bytes(b"new output")
    pending = stage_out(settings, tmp_path / "o.mp4", "/srv/rec/o.mp4")
    assert (tmp_path / "mnt" / "o.mp4").read_bytes() == b"old"
    pending.commit()
    pending.commit()  # idempotent
    assert (tmp_path / "mnt" / "o.mp4").read_bytes() == b"new output"
    assert sorted(p.name for p in (tmp_path / "mnt").iterdir()) == ["o.mp4"]


def test_space_check_counts_min_free_headroom(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, min_free_mb=10**9)
    with pytest.raises(NoSpaceError, match="min_free_mb") as caught:
        check_space(settings, tmp_path, 1)
    assert caught.value.transient and caught.value.free is not None


def test_clean_scratch_removes_only_old_leftovers(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    old, new = scratch / "src-old.ts.part", scratch / "src-new.ts"
    old.write_bytes(b"1")
    new.write_bytes(b"2")
    past = time.time() - 3 * 86400
    os.utime(old, (past, past))
    assert clean_scratch(settings) == 1
    assert [p.name for p in scratch.iterdir()] == ["src-new.ts"]


def test_background_sink_writes_in_order_and_reports_the_writer_error() -> None:
    got: list[bytes] = []
    with BackgroundSink(got.append, depth=2) as sink:
        for i in range(50):
            sink(bytes([i]))
        sink.drain()
        assert got == [bytes([i]) for i in range(50)]

    def broken(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"), BackgroundSink(broken) as sink:
        sink(b"x")
        sink.drain()
