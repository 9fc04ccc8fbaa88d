"""The `kamado` command line run as a real subprocess: exit codes, messages, JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.media import Clips, sha256
from tests.support.workers import environ_without_kamado

pytestmark = pytest.mark.integration


def kamado(
    *args: str, home: Path, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = environ_without_kamado() | {"HOME": str(home)} | env
    return subprocess.run(
        [sys.executable, "-m", "worker.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def test_config_check_prints_the_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(
        'broker_url = "redis://:hunter2@recorder:6379/0"\n[worker]\nconcurrency = 2\n'
    )
    result = kamado("config", "check", str(config), "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == str(config)
    assert data["settings"]["broker_url"] == "redis://:***@recorder:6379/0"
    assert data["settings"]["worker"]["concurrency"] == 2
    assert "hunter2" not in result.stdout


def test_config_check_names_each_bad_field_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text('[encode]\ndefault_profil = "x"\ntime_limit = -5\n')
    result = kamado("config", "check", str(config), home=tmp_path)
    assert result.returncode == 2
    assert "encode.default_profil: unknown key" in result.stderr
    assert "encode.time_limit = -5: Input should be greater than 0" in result.stderr
    assert result.stdout == ""


def test_environment_errors_are_reported_too(tmp_path: Path) -> None:
    result = kamado("config", "check", home=tmp_path, KAMADO_WORKER__CONCURRENCY="many")
    assert result.returncode == 2
    assert "worker.concurrency = 'many'" in result.stderr


def test_profiles_argv_prints_the_exact_argv_as_json(clips: Clips, tmp_path: Path) -> None:
    result = kamado(
        "profiles", "argv", "h264-intel", "--backend", "vaapi",
        "--input", str(clips.isdb_1080i), "--output", str(tmp_path / "o.mp4"), home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    assert argv[0] == "ffmpeg" and "h264_vaapi" in argv and argv[-1] == str(tmp_path / "o.mp4")


def test_profiles_argv_refuses_a_backend_the_profile_does_not_accept(
    clips: Clips, tmp_path: Path
) -> None:
    result = kamado(
        "profiles", "argv", "h264-intel", "--backend", "x264",
        "--input", str(clips.isdb_1080i), "--output", "o.mp4", home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "does not accept x264" in result.stderr


def test_profiles_lists_the_builtin_profiles_with_their_queues(tmp_path: Path) -> None:
    result = kamado("profiles", "--json", home=tmp_path)
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["h264-intel"]["queue"] == "encode.gpu" and data["h264-intel"]["hardware_only"]
    assert data["h264-x264"]["queue"] == "encode.cpu"


def test_encode_of_a_missing_file_exits_2_before_starting_anything(tmp_path: Path) -> None:
    result = kamado("encode", str(tmp_path / "nope.ts"), home=tmp_path)
    assert result.returncode == 2
    assert "nope.ts: no such file" in result.stderr
    assert not (tmp_path / ".local").exists()


def test_encode_with_an_unknown_profile_exits_2(clips: Clips, tmp_path: Path) -> None:
    result = kamado("encode", str(clips.isdb_1080i), "--profile", "h265", home=tmp_path)
    assert result.returncode == 2
    assert "unknown profile 'h265'" in result.stderr


def test_encode_runs_good_and_bad_files_and_exits_1_when_one_failed(
    clips: Clips, tmp_path: Path
) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    good = Path(shutil.copy2(clips.isdb_1080i, rec / "good 番組.ts"))
    bad = Path(shutil.copy2(clips.text_ts, rec / "bad.ts"))
    before = sha256(bad)
    out = tmp_path / "out"
    out.mkdir()
    result = kamado(
        "encode", str(good), str(bad), "--output-dir", str(out), "--json", "--jobs", "2",
        home=tmp_path, KAMADO_WORKER__BACKENDS='["x264"]',
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # --jobs reaches the one-box worker (it used to be started with one slot, always)
    log = (tmp_path / ".local/state/kamado/logs/worker.log").read_text()
    assert "concurrency: 2 (prefork)" in log
    rows = {Path(r["source"]).name: r for r in json.loads(result.stdout)}
    assert rows["good 番組.ts"]["state"] == "done"
    assert rows["good 番組.ts"]["result"]["video_codec"] == "h264"
    assert rows["bad.ts"]["state"] == "failed"
    assert "bad.ts: not a recording ffprobe can read" in rows["bad.ts"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["good 番組.mp4"]
    assert sha256(bad) == before


def test_demo_runs_the_whole_pipeline_on_the_embedded_broker(tmp_path: Path) -> None:
    result = kamado("demo", "--seconds", "3", "--json", home=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "done"
    assert data["probe"]["reused"] is False, data["probe"]
    # The second demo on this machine reuses the probe and says so; a third one told to
    # re-probe does so, and with two slots from the config the one-box worker has two.
    again = kamado("demo", "--seconds", "3", home=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "encoder probe reused: ffmpeg, render node, drivers and kamado unchanged" in (
        again.stdout
    )
    forced = kamado(
        "demo", "--seconds", "3", "--json", "--reprobe", home=tmp_path, timeout=300,
        KAMADO_WORKER__CONCURRENCY="2",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["probe"] == {"reused": False, "reason": "--reprobe"}
    log = (tmp_path / ".local/state/kamado/logs/worker.log").read_text()
    assert "concurrency: 2 (prefork)" in log
    output = Path(data["output"])
    assert output.is_file() and output.parent == tmp_path / ".local/state/kamado/demo"
    kinds = {(s["type"], s["codec"]) for s in data["ffprobe"]["streams"]}
    assert kinds == {("video", "h264"), ("audio", "aac")}
    assert abs(data["ffprobe"]["duration_s"] - 3.0) < 0.5
    assert shutil.which("ffmpeg")
