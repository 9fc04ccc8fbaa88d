"""Recorder hooks run as real processes with exactly the environment each recorder sets."""

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

HOSTILE = 'ドラマ "it\'s" $(touch pwned) `x`\n改行.ts'


def epgstation_env(recpath: str, **overrides: str) -> dict[str, str]:
    """What EPGStation v2 passes a recorded hook: only these variables plus PATH.

    Node turns null into "null"; times are milliseconds (reference/recorders.md 1.2-1.3).
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RECORDEDID": "42",
        "PROGRAMID": "3273601024123",
        "CHANNELTYPE": "GR",
        "CHANNELID": "3273601024",
        "CHANNELNAME": "ＮＨＫ総合１・東京",
        "HALF_WIDTH_CHANNELNAME": "NHK総合1・東京",
        "STARTAT": "1700000000000",
        "ENDAT": "1700001800000",
        "DURATION": "1800000",
        "NAME": "ドラマ「テスト」",
        "HALF_WIDTH_NAME": "ドラマ「テスト」",
        "DESCRIPTION": "null",
        "HALF_WIDTH_DESCRIPTION": "null",
        "EXTENDED": "null",
        "HALF_WIDTH_EXTENDED": "null",
        "RECPATH": recpath,
        "LOGPATH": "null",
        "ERROR_CNT": "null",
        "DROP_CNT": "null",
        "SCRAMBLING_CNT": "null",
    }
    env.update(overrides)
    return env


def place(tiny: Path, directory: Path, name: str) -> Path:
    """A copy of the sample recording under ``name``."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    shutil.copyfile(tiny, target)
    return target


def test_epgstation_finish_and_failed_hooks_make_one_flagged_job(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path / "recorded", HOSTILE)
    env = epgstation_env(str(rec))
    first = kamado.run("hook", "epgstation", "--json", env=env)
    second = kamado.run("hook", "epgstation", "--failed", "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["action"] == json.loads(second.stdout)["action"] == "spooled"
    kamado.delivered()  # by the deliveries the hooks started, nothing else
    jobs = kamado.json("status")
    assert len(jobs) == 1
    job = jobs[0]
    assert job["source"] == str(rec)
    assert job["state"] == "queued"
    assert job["priority"] == 2
    assert job["flags"] == ["the recorder reported the recording as failed"]
    assert job["recording"]["title"] == "ドラマ「テスト」"
    assert job["recording"]["start"] == "2023-11-14T22:13:20Z"
    assert "drop_count" not in job["recording"]  # "null" is absent, not zero
    assert not (tmp_path / "pwned").exists()
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"epgstation: submitted {job['id']}" in log
    assert f"epgstation: exists {job['id']}" in log
    assert BrokerState(registry).waiting("encode.gpu")[0].job_id == job["id"]


def test_with_wait_the_hook_delivers_itself_and_reports_the_job(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path / "recorded", HOSTILE)
    env = epgstation_env(str(rec))
    first = kamado.run("hook", "epgstation", "--wait", "--json", env=env)
    second = kamado.run("hook", "epgstation", "--failed", "--wait", "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    job_id = json.loads(first.stdout)["id"]
    assert json.loads(first.stdout) == {"action": "submitted", "id": job_id, "detail": "encode.gpu"}
    assert json.loads(second.stdout) == {"action": "exists", "id": job_id, "detail": "encode.gpu"}
    assert [j.id for j in registry.list()] == [job_id]
    assert kamado.deliveries() == []
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert log.count(job_id) == 2


def test_epgstation_environment_without_recpath_is_refused_and_nothing_is_submitted(
    kamado: Kamado, registry: Registry
) -> None:
    env = epgstation_env("null")
    done = kamado.run("hook", "epgstation", env=env)
    assert done.returncode == 2
    assert "RECPATH is not set" in done.stderr
    assert registry.list() == []
    assert kamado.json("spool", "list") == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STARTAT", "yesterday", "STARTAT = 'yesterday'"),
        ("RECPATH", "/nowhere/番組.ts", "/nowhere/番組.ts: no such file"),
    ],
)
def test_epgstation_bad_variables_get_one_clear_message(
    kamado: Kamado,
    registry: Registry,
    tiny_ts: Path,
    tmp_path: Path,
    variable: str,
    value: str,
    message: str,
) -> None:
    rec = place(tiny_ts, tmp_path, "a.ts")
    done = kamado.run("hook", "epgstation", env=epgstation_env(str(rec), **{variable: value}))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert registry.list() == []
    assert kamado.json("spool", "list") == []


def test_recordings_with_too_many_drops_are_held(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    with kamado.config.open("a", encoding="utf-8") as fh:
        fh.write('[scheduler.hold]\ndrops = 10\naction = "hold"\n')
    rec = place(tiny_ts, tmp_path, "drops.ts")
    done = kamado.run("hook", "epgstation", "--json", env=epgstation_env(str(rec), DROP_CNT="11"))
    assert done.returncode == 0, done.stderr
    kamado.delivered()
    (job,) = kamado.json("status")
    log = (kamado.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"epgstation: held {job['id']}" in log
    assert job["state"] == "held"
    assert job["flags"] == ["11 drops (threshold 10)"]
    assert BrokerState(registry).waiting("encode.gpu") == []


def test_chinachu_hook_takes_a_relative_path_and_the_programme_json(
    kamado: Kamado, tiny_ts: Path, tmp_path: Path
) -> None:
    chinachu = tmp_path / "chinachu"
    name = "[231115-0713][GR27][ＮＨＫ総合]ニュース 'x' $(id).m2ts"
    place(tiny_ts, chinachu / "recorded", name)
    program = {
        "id": "1a2b3c", "category": "news", "title": "ニュース", "fullTitle": "ニュース【字】",
        "start": 1700000000000, "end": 1700000900000, "seconds": 900,
        "channel": {"type": "GR", "channel": "27", "name": "ＮＨＫ総合", "id": "3hqgy"},
        "recorded": f"./recorded/{name}",
    }  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = kamado.run(
        "hook", "chinachu", f"./recorded/{name}", json.dumps(program, ensure_ascii=False),
        env=env, cwd=chinachu,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    kamado.delivered()
    (job,) = kamado.json("status")
    assert job["source"] == str(chinachu / "recorded" / name)
    assert job["recording"]["genre"] == "news"
    assert job["recording"]["channel"] == "ＮＨＫ総合"


def test_chinachu_programme_that_is_not_json_is_refused(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path, "c.m2ts")
    done = kamado.run("hook", "chinachu", str(rec), "{not json")
    assert done.returncode == 2
    assert "PROGRAM_JSON (the second argument) is not JSON" in done.stderr
    assert registry.list() == []
    assert kamado.json("spool", "list") == []


def test_edcb_hook_reads_its_macros_and_flags_a_failed_recording(
    kamado: Kamado, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path / "edcb" / "Rec", "アニメ 第1話.ts")
    env = {
        "PATH": os.environ["PATH"], "FilePath": str(rec), "FolderPath": str(rec.parent),
        "FileName": rec.stem, "Title": "アニメ 第1話", "Title2": "アニメ 第1話",
        "ServiceName": "ＴＯＫＹＯ　ＭＸ１", "StartTime": "2024-01-01T21:00:00+09:00",
        "DurationSecond": "1800", "RecInfoID": "77", "ONID10": "32391", "TSID10": "32391",
        "SID10": "23608", "EID10": "1234", "Drops": "0", "Scrambles": "0",
        "Result": "録画中にキャンセルされた可能性があります", "BatFileTag": "",
    }  # fmt: skip
    done = kamado.run("hook", "edcb", env=env, cwd=tmp_path / "edcb")
    assert done.returncode == 0, done.stderr
    kamado.delivered()
    (job,) = kamado.json("status")
    assert job["recording"]["end"] == "2024-01-01T12:30:00Z"
    assert "recorder: 録画中にキャンセルされた可能性があります" in job["flags"]


def test_edcb_without_filepath_is_refused(kamado: Kamado, registry: Registry) -> None:
    done = kamado.run("hook", "edcb", env={"PATH": os.environ["PATH"], "Title": "x"})
    assert done.returncode == 2
    assert "FilePath is not set" in done.stderr
