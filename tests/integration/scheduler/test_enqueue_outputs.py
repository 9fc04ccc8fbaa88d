"""`kamado enqueue -r` gives every recording its own output, and never blocks on a FIFO."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration.scheduler.conftest import Kamado, write_config
from worker.broker.registry import Registry

pytestmark = pytest.mark.integration


def test_enqueue_of_equal_stems_and_a_symlinked_dir_claims_one_output_per_job(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec, enc = tmp_path / "rec", tmp_path / "enc"
    for d in ("2024/a", "2025/b"):
        (rec / d).mkdir(parents=True)
        shutil.copyfile(tiny_ts, rec / d / "news.ts")
    enc.mkdir()
    (enc / "news (2).mp4").write_bytes(b"the user's own file")
    (tmp_path / "alias").symlink_to(rec / "2024" / "a", target_is_directory=True)
    fifo = rec / "live.ts"
    os.mkfifo(fifo)
    config = write_config(
        tmp_path / "enc.toml",
        kamado.broker_url,
        kamado.state_dir,
        f'[encode]\noutput_dir = "{enc}"\n',
    )
    box = Kamado(config, kamado.state_dir, kamado.broker_url)
    done = box.json("enqueue", str(rec), "-r", str(tmp_path / "alias" / "news.ts"), str(fifo))
    assert len(done["queued"]) == 2, done
    assert {"path": str(fifo), "reason": "not a regular file (a FIFO (named pipe))"} in done[
        "skipped"
    ]
    outputs = sorted(Path(r.job.output).name for r in registry.list())
    assert outputs == ["news (3).mp4", "news.mp4"]  # (2) is the user's: taken
    assert done["renamed"] == [
        {"source": str(rec / "2025" / "b" / "news.ts"), "output": str(enc / "news (3).mp4")}
    ]
    assert (enc / "news (2).mp4").read_bytes() == b"the user's own file"


def test_enqueue_with_on_conflict_refuse_skips_the_second_naming_both_sources(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec, enc = tmp_path / "rec", tmp_path / "enc"
    for d in ("a", "b"):
        (rec / d).mkdir(parents=True)
        shutil.copyfile(tiny_ts, rec / d / "news.ts")
    enc.mkdir()
    extra = f'[encode]\noutput_dir = "{enc}"\non_conflict = "refuse"\n'
    config = write_config(tmp_path / "refuse.toml", kamado.broker_url, kamado.state_dir, extra)
    done = Kamado(config, kamado.state_dir, kamado.broker_url).json("enqueue", str(rec), "-r")
    assert len(done["queued"]) == 1
    (refused,) = [s for s in done["skipped"] if "already the output of job" in s["reason"]]
    assert str(rec / "a" / "news.ts") in refused["reason"]
    assert str(rec / "b" / "news.ts") in refused["reason"]
    assert [Path(r.job.output).name for r in registry.list()] == ["news.mp4"]


def test_enqueue_beside_the_source_does_not_take_the_users_own_mp4(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    shutil.copyfile(tiny_ts, rec / "第1話.ts")
    (rec / "第1話.mp4").write_bytes(b"encoded by hand last year")
    done = kamado.json("enqueue", str(rec))
    assert len(done["queued"]) == 1
    (record,) = registry.list()
    assert record.job.output == str(rec / "第1話 (2).mp4")
    assert (rec / "第1話.mp4").read_bytes() == b"encoded by hand last year"
