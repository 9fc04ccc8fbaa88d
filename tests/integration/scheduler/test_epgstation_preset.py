"""`kamado epgstation encode` run as EPGStation runs a preset: its environment, its stdout
parsing, its SIGINT; a real worker on a real redis-server. (The same command behind the
real EPGStation server: tests/integration/epgstation/.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.scheduler.conftest import ROOT, write_config
from tests.support.media import Clips, leftovers, sha256
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.workers import running_worker
from worker.broker.registry import Registry
from worker.encode.ffprobe import read_media
from worker.jobs import JobState

pytestmark = pytest.mark.integration

PROFILES = (
    '[profiles.slow]\nbackends = ["x264"]\nx264_preset = "slow"\nheight = 1080\n'
    '[profiles.quick]\nbackends = ["x264"]\nx264_preset = "ultrafast"\nheight = 360\n'
)


@dataclass
class PresetRig:
    """A recorder directory as EPGStation keeps it, a config and a running worker."""

    redis: RedisProcess
    config: Path
    recorded: Path
    registry: Registry

    def env(self, source: Path, output: Path, **extra: str) -> dict[str, str]:
        """The environment EPGStation gives an encode preset (EncoderModel.ts)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RECORDEDID": "7", "INPUT": str(source), "OUTPUT": str(output), "DIR": str(output),
            "SUBDIR": "", "NAME": "テスト番組", "CHANNELNAME": "EPGS TEST 1",
            "START_AT": "1764900000000", "END_AT": "1764900008000", "DROP_CNT": "",
            "ERROR_CNT": "", "SCRAMBLING_CNT": "", "VIDEORESOLUTION": "", "FFMPEG": "ffmpeg",
        }  # fmt: skip
        env.update(extra)
        return env

    def start(self, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "worker.cli.main", "epgstation", "encode",
                "--config", str(self.config), *args]  # fmt: skip
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.fixture
def rig(own_redis: RedisProcess, tmp_path: Path) -> Iterator[PresetRig]:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    config = write_config(
        tmp_path / "kamado.toml", own_redis.url, tmp_path / "state",
        "[scheduler.epgstation]\nbroker_wait = 30\ncancel_wait = 20\n"
        "[encode]\nprogress_interval = 0.5\n" + PROFILES,
    )  # fmt: skip
    registry = Registry.connect(own_redis.url)
    with running_worker(own_redis.url, tmp_path / "worker", KAMADO_CONFIG=str(config)):
        yield PresetRig(own_redis, config, recorded, registry)
    registry.close()


def lines_of(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as EPGStation parses it: each must be a progress object."""
    parsed = [json.loads(line) for line in stdout.splitlines() if line]
    for item in parsed:
        assert item["type"] == "progress" and isinstance(item["log"], str), item
        assert isinstance(item["percent"], int | float) and 0 <= item["percent"] <= 1, item
    return parsed


def test_the_preset_encodes_input_to_exactly_output_with_progress_lines(
    rig: PresetRig, clips: Clips
) -> None:
    source = rig.recorded / "20261203-210000-テスト番組.m2ts"
    shutil.copy(clips.long_1080i, source)
    digest = sha256(source)
    output = rig.recorded / "20261203-210000-テスト番組.mp4"
    proc = rig.start(rig.env(source, output), "--profile", "slow")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    progress = lines_of(stdout)
    percents = [p["percent"] for p in progress]
    assert percents[-1] == 1 and percents == sorted(percents), percents
    assert any(0 < p < 1 for p in percents), progress  # it rose while encoding
    assert any("fps=" in p["log"] and "speed=" in p["log"] for p in progress), progress
    media = read_media("ffprobe", output, reject_cut_ts=False)
    assert media.video is not None and media.video.codec == "h264"
    assert sha256(source) == digest
    assert sorted(p.name for p in rig.recorded.iterdir()) == sorted([source.name, output.name])
    (record,) = rig.registry.list()
    assert record.state is JobState.DONE and record.job.output == str(output)
    assert record.job.profile == "slow"


def test_a_second_encode_of_the_same_recording_is_its_own_job(rig: PresetRig, clips: Clips) -> None:
    source = rig.recorded / "rec.m2ts"
    shutil.copy(clips.isdb_1080i, source)
    first, second = rig.recorded / "rec.mp4", rig.recorded / "rec(1).mp4"
    for output in (first, second):
        done = rig.start(rig.env(source, output), "--profile", "quick")
        _out, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
    ids = {r.id for r in rig.registry.list()}
    assert len(ids) == 2 and first.is_file() and second.is_file()
    # EPGStation deleted the first file and encodes to the same name again: encoded again.
    first.unlink()
    again = rig.start(rig.env(source, first), "--profile", "quick")
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert first.is_file() and len(rig.registry.list()) == 2


def test_sigint_cancels_the_job_and_leaves_no_output(rig: PresetRig, clips: Clips) -> None:
    source = rig.recorded / "cancel me.m2ts"
    shutil.copy(clips.long_1080i, source)
    digest = sha256(source)
    output = rig.recorded / "cancel me.mp4"
    with rig.start(rig.env(source, output), "--profile", "slow") as proc:
        _cancel_while_encoding(proc)
    (record,) = rig.registry.list()
    assert record.state is JobState.CANCELLED
    assert not output.exists() and leftovers(rig.recorded) == []
    assert sha256(source) == digest


def _cancel_while_encoding(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        seen.append(json.loads(line))
        if "encoding" in seen[-1]["log"]:
            break
    # EPGStation's cancel: stdout closed first, SIGINT 500 ms later to the direct child.
    proc.stdout.close()
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - started < 20


def test_with_the_broker_away_the_preset_fails_after_its_wait_and_leaves_nothing(
    tmp_path: Path, clips: Clips
) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    source = recorded / "rec.m2ts"
    shutil.copy(clips.isdb_1080i, source)
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "kamado.toml", f"redis://127.0.0.1:{free_port()}/0", state,
        "[scheduler.epgstation]\nbroker_wait = 3\n",
    )  # fmt: skip
    env = PresetRig(None, config, recorded, None).env(source, recorded / "rec.mp4")  # type: ignore[arg-type]
    started = time.monotonic()
    proc = PresetRig(None, config, recorded, None).start(env)  # type: ignore[arg-type]
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert 3 <= time.monotonic() - started < 30
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broker unreachable for 3 s" in errors[0], stderr
    assert "broker away" in lines_of(stdout)[-1]["log"]
    assert not list((state / "spool").glob("*.json"))  # its spooled job taken back
    assert sorted(p.name for p in recorded.iterdir()) == ["rec.m2ts"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"INPUT": ""}, "epgstation: INPUT is not set"),
        ({"OUTPUT": ""}, "epgstation: OUTPUT is not set"),
        ({"OUTPUT": "/nowhere/x.mkv"}, "an output must be an .mp4 file"),
        ({"INPUT": "/nonexistent/rec.m2ts"}, "/nonexistent/rec.m2ts: no such file"),
        ({"NAME": "x" * 5000}, "epgstation: NAME"),
        ({"START_AT": "yesterday"}, "epgstation: variable START_AT = 'yesterday'"),
    ],
)
def test_bad_preset_input_is_one_clear_error_and_nothing_is_written(
    rig: PresetRig, clips: Clips, change: dict[str, str], message: str
) -> None:
    source = rig.recorded / "rec.m2ts"
    shutil.copy(clips.isdb_1080i, source)
    env = rig.env(source, rig.recorded / "rec.mp4") | change
    proc = rig.start(env)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert all(json.loads(line)["type"] == "progress" for line in stdout.splitlines() if line)
    assert sorted(p.name for p in rig.recorded.iterdir()) == ["rec.m2ts"]
    assert rig.registry.list() == []
