"""The next job's source probed ahead is used once, and only while the file is unchanged.

Real ffprobe on a generated broadcast clip. Which probe answered is told apart by giving
the job's own read an ffprobe that does not exist: only a result made ahead can answer it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.media import Clips
from worker.encode.ffprobe import read_media
from worker.encode.probe_ahead import read_source, warm
from worker.errors import KamadoError, SourceError

pytestmark = pytest.mark.integration

MISSING = "/nonexistent/ffprobe"


def test_a_result_made_ahead_answers_its_job_once(clips: Clips, tmp_path: Path) -> None:
    rec = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "next.ts"))
    warm("ffprobe", rec, 1024)
    assert read_source(MISSING, rec, service_id=1024) == read_media("ffprobe", rec, service_id=1024)
    with pytest.raises(KamadoError):  # used up: the next read probes (with the missing binary)
        read_source(MISSING, rec, service_id=1024)


def test_another_programme_is_probed_again(clips: Clips, tmp_path: Path) -> None:
    rec = Path(shutil.copy2(clips.two_services, tmp_path / "two.ts"))
    warm("ffprobe", rec, 1024)
    assert read_source("ffprobe", rec, service_id=1032).program_id == 1032


@pytest.mark.parametrize("change", ["append", "touch", "replace"])
def test_a_file_changed_since_is_probed_again(clips: Clips, tmp_path: Path, change: str) -> None:
    rec = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "changed.ts"))
    warm("ffprobe", rec, 1024)
    if change == "append":  # now cut inside a TS packet: its own probe refuses it
        with rec.open("ab") as fh:
            fh.write(b"\x47" + bytes(40))
        with pytest.raises(SourceError, match="truncated MPEG-TS"):
            read_source("ffprobe", rec, service_id=1024)
        return
    if change == "touch":
        stamp = rec.stat().st_mtime_ns + 1_000_000
        os.utime(rec, ns=(stamp, stamp))
    else:
        shutil.copy2(clips.isdb_1080i, tmp_path / "other.ts")
        (tmp_path / "other.ts").replace(rec)
    with pytest.raises(KamadoError):  # not the result made ahead: it probes, and cannot
        read_source(MISSING, rec, service_id=1024)
