"""End to end across hosts: EPGStation's hook on the recorder, Redis, a worker, SFTP both ways."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.e2e.conftest import RECORDER, WORKER, Cluster
from tests.integration.prefetch.remote_worker import wait_final
from tests.support.media import Clips, leftovers, sha256
from worker.broker.registry import JobRecord
from worker.jobs import JobState
from worker.staging.api import scratch_path

pytestmark = pytest.mark.integration


def epgstation_env(recpath: Path, recorded_id: str) -> dict[str, str]:
    """Exactly the variables EPGStation v2 gives recordingFinishCommand, and nothing else."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RECORDEDID": recorded_id,
        "PROGRAMID": "3273601024123",
        "CHANNELTYPE": "GR",
        "CHANNELID": "3273601024",
        "CHANNELNAME": "ＮＨＫ総合１・東京",
        "HALF_WIDTH_CHANNELNAME": "NHK総合1・東京",
        "STARTAT": "1700000000000",
        "ENDAT": "1700001800000",
        "DURATION": "1800000",
        "NAME": "ニュース「テスト」",
        "HALF_WIDTH_NAME": "ニュース「テスト」",
        "DESCRIPTION": "null",
        "HALF_WIDTH_DESCRIPTION": "null",
        "EXTENDED": "null",
        "HALF_WIDTH_EXTENDED": "null",
        "RECPATH": str(recpath),
        "LOGPATH": "null",
        "ERROR_CNT": "0",
        "DROP_CNT": "0",
        "SCRAMBLING_CNT": "0",
    }


def hook(cluster: Cluster, recording: Path, recorded_id: str) -> str:
    """Run `kamado hook epgstation` on the recorder as EPGStation would; the job's id."""
    argv = [
        sys.executable, "-m", "worker.cli.main", "hook", "epgstation",
        "--config", str(cluster.recorder_config), "--json",
    ]  # fmt: skip
    done = cluster.net.run(RECORDER, argv, env=epgstation_env(recording, recorded_id))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["action"] == "spooled", answer
    # The hook handed delivery to a detached process on the recorder: wait for the job.
    source = f"sftp://recorder/{recording.name}"
    deadline = time.monotonic() + 60
    while not (found := [r.id for r in cluster.registry.list() if r.job.source == source]):
        assert time.monotonic() < deadline, "the hook's delivery did not submit the job"
        time.sleep(0.05)
    (job_id,) = found
    return job_id


def check_delivered(cluster: Cluster, record: JobRecord, recording: Path, digest: str) -> None:
    """One verified output next to the untouched recording; no temp or scratch files."""
    assert record.state is JobState.DONE, record.error
    assert [a.outcome for a in record.history].count("done") == 1
    assert record.job.source == f"sftp://recorder/{recording.name}"
    output = cluster.recorded / f"{recording.stem}.mp4"
    assert record.result is not None and record.result["video_codec"] == "h264"
    assert output.stat().st_size == record.result["size_bytes"]
    assert sha256(recording) == digest
    assert leftovers(cluster.recorded) == []
    assert sorted(p.name for p in cluster.recorded.glob(f"{glob_safe(recording.stem)}*")) == [
        output.name,
        recording.name,
    ]
    assert not cluster.scratch.exists() or list(cluster.scratch.iterdir()) == []


def glob_safe(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def test_a_recording_the_hook_submits_is_pulled_encoded_and_pushed_back(
    cluster: Cluster, clips: Clips
) -> None:
    recording = Path(shutil.copy2(clips.isdb_1080i, cluster.recorded / "ニュース 'e2e' $(x).ts"))
    digest = sha256(recording)
    job_id = hook(cluster, recording, "101")
    record = wait_final(cluster.registry, [job_id], 120)[job_id]
    assert cluster.worker_alive(), cluster.worker.log_tail(40)
    check_delivered(cluster, record, recording, digest)
    assert record.worker == "worker@e2e"


def test_a_link_cut_mid_transfer_still_finishes_the_job_exactly_once(
    cluster: Cluster, clips: Clips
) -> None:
    net = cluster.net
    recording = Path(shutil.copy2(clips.long_1080i, cluster.recorded / "ドラマ 第2話.ts"))
    digest = sha256(recording)
    size = recording.stat().st_size
    part = scratch_path(cluster.scratch, f"sftp://recorder/{recording.name}")
    part = part.with_name(part.name + ".part")
    # Slow the recorder's side of the link so the pull lasts long enough to be cut.
    net.shape(RECORDER, WORKER, "12mbit")
    try:
        job_id = hook(cluster, recording, "102")
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= 256 * 1024):
            assert time.monotonic() < deadline, "the pull did not start"
            time.sleep(0.02)
        net.set_link(WORKER, RECORDER, up=False)
        at_cut = part.stat().st_size if part.exists() else 0
        time.sleep(6)  # longer than the location's io_timeout: the transfer must reconnect
        net.set_link(WORKER, RECORDER, up=True)
    finally:
        net.set_link(WORKER, RECORDER, up=True)
        net.shape(RECORDER, WORKER, None)
    assert 0 < at_cut < size, "the link was not cut mid-transfer"
    record = wait_final(cluster.registry, [job_id], 120)[job_id]
    assert cluster.worker_alive(), cluster.worker.log_tail(40)
    check_delivered(cluster, record, recording, digest)
    # Nothing else touched the job once it was done.
    time.sleep(1)
    again = cluster.registry.get(job_id, with_history=True)
    assert again is not None and again.state is JobState.DONE and again.history == record.history


def test_epgstations_encode_preset_on_the_recorder_gets_exactly_output_over_sftp(
    cluster: Cluster, clips: Clips
) -> None:
    """`kamado epgstation encode` as EPGStation's preset runs it on the recorder: the
    worker pulls INPUT over SFTP and pushes the MP4 back to exactly OUTPUT (a second
    encode's name, "(1)", that kamado's own naming would never pick)."""
    recording = Path(shutil.copy2(clips.isdb_1080i, cluster.recorded / "アニメ 'p' #3.m2ts"))
    digest = sha256(recording)
    output = cluster.recorded / "アニメ 'p' #3(1).mp4"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RECORDEDID": "103",
        "INPUT": str(recording), "OUTPUT": str(output), "DIR": str(output), "SUBDIR": "",
        "NAME": "アニメ 'p' #3", "CHANNELNAME": "ＢＳ１１", "START_AT": "1764900000000",
        "END_AT": "1764901800000", "DROP_CNT": "0", "ERROR_CNT": "0", "SCRAMBLING_CNT": "0",
        "FFMPEG": "ffmpeg", "FFPROBE": "ffprobe",
    }  # fmt: skip
    argv = [sys.executable, "-m", "worker.cli.main", "epgstation", "encode",
            "--config", str(cluster.recorder_config), "--profile", "h264-x264"]  # fmt: skip
    done = cluster.net.run(RECORDER, argv, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    progress = [json.loads(line) for line in done.stdout.splitlines()]
    assert progress[-1]["percent"] == 1 and all(p["type"] == "progress" for p in progress)
    (record,) = [r for r in cluster.registry.list() if r.job.output.endswith("#3(1).mp4")]
    assert record.state is JobState.DONE, record.error
    assert record.job.source == f"sftp://recorder/{recording.name}"
    assert record.job.output == f"sftp://recorder/{output.name}"
    assert record.result is not None and output.stat().st_size == record.result["size_bytes"]
    assert sha256(recording) == digest and leftovers(cluster.recorded) == []
    assert sorted(p.name for p in cluster.recorded.glob(f"{glob_safe(recording.stem)}*")) == [
        output.name,
        recording.name,
    ]
    assert not cluster.scratch.exists() or list(cluster.scratch.iterdir()) == []


def test_the_hosts_reach_each_other_only_through_the_links_the_test_made(cluster: Cluster) -> None:
    # The worker has no route to anything but its two links.
    routes = cluster.net.run(WORKER, ["ip", "-4", "route", "show"]).stdout
    assert "default" not in routes
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    assert cluster.net.hosts[WORKER] in done.stdout
