"""The guest probe for real on this GPU-less machine: hardware missing, x264 proven."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from guest_agent.probe import cached, run_probe
from tests.integration.guest_agent.guests import guest_argv, guest_env
from worker.backends.capabilities import Status
from worker.captions import caption_support
from worker.profiles import Backend
from worker.settings.model import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        any(Path("/dev/dri").glob("renderD*")) if Path("/dev/dri").is_dir() else False,
        reason="this machine has a render node; these tests expect none",
    ),
]

NO_DEVICE = "No VA display found for device /dev/dri/renderD128."


def test_qsv_and_vaapi_fail_as_missing_hardware_with_ffmpegs_words_and_x264_is_proven(
    tmp_path: Path,
) -> None:
    probe = run_probe(Settings(state_dir=tmp_path))
    for backend in (Backend.QSV, Backend.VAAPI):
        report = probe.backends[backend]
        assert report.status is Status.FAILED
        assert report.kind == "hardware"
        # The shape and the profiles that failed, then ffmpeg's own words.
        assert report.reason == f"1440x1080i (h264-auto, h264-intel): exit 1: {NO_DEVICE}"
        first, *rest = report.samples
        assert (first.shape, first.passed, first.kind) == ("1440x1080i", False, "hardware")
        assert [(s.shape, s.kind) for s in rest] == [
            ("720x480i", "skipped"),
            ("1920x1080i", "skipped"),
        ]
    x264 = probe.backends[Backend.X264]
    assert x264.status is Status.PROVEN
    assert x264.fps is not None and x264.fps > 0
    # Proven for every broadcast shape, each output verified (frames counted on the way).
    assert [(s.shape, s.passed) for s in x264.samples] == [
        ("1440x1080i", True), ("720x480i", True), ("1920x1080i", True),
    ]  # fmt: skip
    assert all(s.profiles == ["h264-auto", "h264-x264"] and s.frames for s in x264.samples)
    assert probe.gpu is not None and probe.gpu.generation == ""
    assert "no PCI id for /dev/dri/renderD128" in probe.gpu.note
    assert probe.proven == [Backend.X264]
    assert probe.render_nodes == []
    assert any("no render node under /dev/dri" in hint for hint in probe.hints)
    assert probe.ffmpeg.encoders == {"h264_qsv": True, "h264_vaapi": True, "libx264": True}
    assert probe.ffmpeg.version.startswith("ffmpeg version")


def test_the_probe_is_cached_until_refreshed(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    first = cached(settings)
    assert (tmp_path / "probe.json").is_file(), "the worker's capability cache is written too"
    assert cached(settings).probed_at == first.probed_at
    assert cached(settings, refresh=True).probed_at > first.probed_at


def test_kamado_guest_probe_json_prints_each_backends_status_reason_and_fps(
    tmp_path: Path,
) -> None:
    env = guest_env("redis://127.0.0.1:1/0", tmp_path)
    done = subprocess.run(
        guest_argv("probe", "--json"), env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data["backends"]) == {"qsv", "vaapi", "x264"}
    for name in ("qsv", "vaapi"):
        item = data["backends"][name]
        assert item["status"] == "failed"
        assert item["kind"] == "hardware"
        assert NO_DEVICE in item["reason"]
        assert item["reason"].startswith("1440x1080i (h264-auto, h264-intel): ")
        assert item["fps"] is None
        assert [s["kind"] for s in item["samples"]] == ["hardware", "skipped", "skipped"]
    assert data["backends"]["x264"]["status"] == "proven"
    assert data["backends"]["x264"]["fps"] > 0
    assert [s["shape"] for s in data["backends"]["x264"]["samples"] if s["passed"]] == [
        "1440x1080i", "720x480i", "1920x1080i",
    ]  # fmt: skip
    assert {"pci_id", "generation", "expected_backends", "quirks"} <= set(data["gpu"])
    assert data["render_nodes"] == []
    assert data["vainfo"]["installed"] in (True, False)
    assert "LIBVA_DRIVER_NAME" not in data["driver"], "keys are snake_case field names"
    assert {"libva_driver_name", "configured", "installed"} <= set(data["driver"])
    assert data["captions"] == caption_support("ffmpeg").model_dump(mode="json")

    human = subprocess.run(guest_argv("probe"), env=env, capture_output=True, text=True, timeout=60)
    assert human.returncode == 0, human.stderr
    assert "No VA display found" in human.stdout
    assert "hardware" in human.stdout
    assert "ARIB captions" in human.stdout


def test_probe_by_hand_before_the_unit_made_the_state_dir_says_how_to_make_it() -> None:
    import os
    import sys

    from tests.support.users import Accounts

    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged account")
    users = Accounts()
    try:
        users.add("guest", member=False)
        parent = users.base / "var-lib"
        parent.mkdir(mode=0o755)  # root-owned, as /var/lib is
        state_dir = parent / "kamado"
        config = users.base / "kamado.toml"
        config.write_text(f'state_dir = "{state_dir}"\n')
        config.chmod(0o644)
        argv = [sys.executable, "-m", "worker.cli.main", "guest", "probe", "--config", str(config)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
        done = users.run("guest", argv, env=env, cwd=Path(__file__).resolve().parents[3])
    finally:
        users.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"state_dir {state_dir}: cannot create it" in done.stderr
    assert f"install -d -o kamado -g kamado -m 0750 {state_dir}" in done.stderr
    assert not state_dir.exists()
