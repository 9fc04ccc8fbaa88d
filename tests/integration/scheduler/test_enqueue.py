"""`kamado enqueue`: a backlog with junk in it, dry runs, dedupe and bad arguments."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from scheduler.queues import BrokerState
from tests.integration.scheduler.conftest import Kamado
from worker.broker.registry import Registry

pytestmark = pytest.mark.integration


def backlog(tiny: Path, root: Path) -> dict[str, Path]:
    """Recordings under hostile names, plus files that must be skipped."""
    (root / "2019" / "秋").mkdir(parents=True)
    files = {
        "deep": root / "2019" / "秋" / "ドラマ 'a' \"b\" $(id).ts",
        "top": root / "news\nline.m2ts",
        "text": root / "notes.ts",
        "empty": root / "zero.ts",
        "other": root / "cover.jpg",
    }
    shutil.copyfile(tiny, files["deep"])
    shutil.copyfile(tiny, files["top"])
    files["text"].write_text("録画ではありません\n", encoding="utf-8")
    files["empty"].write_bytes(b"")
    files["other"].write_bytes(b"\xff\xd8")
    return files


def test_backlog_is_enqueued_with_reasons_for_every_skipped_file_and_dedupes_on_rerun(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    files = backlog(tiny_ts, tmp_path / "rec")
    raw = os.fsencode(tmp_path / "rec") + b"/sjis-\x83e\x83X\x83g.ts"
    Path(os.fsdecode(raw)).write_bytes(tiny_ts.read_bytes())
    dry = kamado.json("enqueue", str(tmp_path / "rec"), "--recursive", "--dry-run")
    assert len(dry["queued"]) == 2
    assert registry.list() == []
    first = kamado.json("enqueue", str(tmp_path / "rec"), "--recursive", "--priority", "low")
    assert sorted(first["queued"]) == sorted(dry["queued"])
    reasons = {item["path"]: item["reason"] for item in first["skipped"]}
    assert reasons[str(files["text"])] == "not an MPEG-TS recording (no sync bytes)"
    assert reasons[str(files["empty"])] == "empty"
    assert reasons[str(files["other"])] == "not a recording (suffix)"
    assert any("not valid UTF-8" in r for r in reasons.values())
    jobs = {j["source"]: j for j in kamado.json("status")}
    assert set(jobs) == {str(files["deep"]), str(files["top"])}
    assert {j["priority"] for j in jobs.values()} == {7}
    again = kamado.json("enqueue", str(tmp_path / "rec"), "--recursive")
    assert again["queued"] == []
    assert sorted(again["known"]) == sorted(first["queued"])
    assert len(BrokerState(registry).waiting("encode.gpu")) == 2


def test_files_still_being_written_or_too_new_are_skipped(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    shutil.copyfile(tiny_ts, rec / "old.ts")
    os.utime(rec / "old.ts", (1_600_000_000, 1_600_000_000))
    shutil.copyfile(tiny_ts, rec / "writing.ts")
    with (rec / "writing.ts").open("ab") as still_open:
        still_open.write(b"\x47" * 188)
        still_open.flush()
        result = kamado.json("enqueue", str(rec), "--older-than", "0s")
        newer = kamado.json("enqueue", str(rec), "--older-than", "30d", "--dry-run")
    reasons = {Path(i["path"]).name: i["reason"] for i in result["skipped"]}
    assert reasons["writing.ts"].startswith("still being written (open by process")
    assert len(result["queued"]) == 1
    assert {Path(i["path"]).name: i["reason"] for i in newer["skipped"]} == {
        "writing.ts": "newer than --older-than"
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/録画.ts"], "/no/such/録画.ts: no such file or directory"),
        (["--priority", "soon", "{rec}"], "--priority 'soon'"),
        (["--profile", "nope", "{rec}"], "unknown profile 'nope'"),
        (["--older-than", "a week", "{rec}"], "--older-than 'a week'"),
        (["{empty}"], "no recordings to enqueue in"),
    ],
)
def test_bad_enqueue_arguments_get_one_message_exit_2_and_submit_nothing(
    kamado: Kamado,
    registry: Registry,
    tiny_ts: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "rec").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    shutil.copyfile(tiny_ts, tmp_path / "rec" / "a.ts")
    argv = [a.format(rec=tmp_path / "rec", empty=tmp_path / "empty") for a in args]
    done = kamado.run("enqueue", *argv)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert registry.list() == []


def test_enqueue_without_a_broker_configured_says_how_to_set_one(
    kamado: Kamado, tiny_ts: Path, tmp_path: Path
) -> None:
    kamado.config.write_text(f'state_dir = "{kamado.state_dir}"\n', encoding="utf-8")
    shutil.copyfile(tiny_ts, tmp_path / "a.ts")
    done = kamado.run("enqueue", str(tmp_path / "a.ts"), "--settle", "0")
    assert done.returncode == 2
    assert "no broker configured" in done.stderr
    assert json.loads(kamado.run("spool", "list", "--json").stdout) == []
