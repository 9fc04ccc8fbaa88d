"""What an admin sees in Flower: kamado's words for running, failed, cancelled, moved jobs.

One real redis-server, one `kamado flower` and one real `kamado worker` (backends probed
for real, so the hardware ones are refused here with ffmpeg's reason) serve every test
in this module; its ffmpeg reads at realtime, so a running encode can be watched.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from scheduler import control as jobs
from scheduler.delivery.deliverer import Deliverer
from scheduler.queues import BrokerState
from scheduler.service import Service
from scheduler.spool.durable import Spool
from scheduler.waiting import WaitingNotices
from tests.integration.admin.flower_rig import realtime_ffmpeg, task_html, tasks_page
from tests.integration.admin.test_flower import PASSWORD, USER, start_flower
from tests.integration.admin.web import get, get_json, wait_until_up
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.workers import client_settings, running_worker
from worker.broker.heartbeat import HostHeartbeat
from worker.broker.keys import host_key
from worker.broker.registry import Registry
from worker.encode.sample import make_sample
from worker.jobs import Job, JobState
from worker.runtime.pool_guard import REFUSAL
from worker.settings.model import Settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration
AUTH = (USER, PASSWORD)
SMALL = {"width": 160, "height": 90, "interlaced": False}
# encoding 37 % · 39 fps · ETA 36 s · x264
ENCODING = re.compile(r"^encoding \d+ % · \d+ fps · ETA \d+ (s|min \d\d s) · x264$")


@dataclass
class Rig:
    """The shared Flower, worker and client side of this module."""

    base: str
    app: Celery
    hostname: str
    registry: Registry
    settings: Settings
    media: Path

    def submit(self, name: str, profile: str, seconds: float = 2.0) -> str:
        """Write a clip named ``name`` and submit it; returns the task id."""
        source = make_sample(self.media / name, seconds=seconds, **SMALL)  # type: ignore[arg-type]
        return self.submit_file(source, profile)

    def submit_file(self, source: Path, profile: str) -> str:
        done = submit_job(self.app, self.registry, self.settings, Job.create(str(source), profile))
        assert done.task_id is not None
        return done.task_id

    def row(self, task_id: str, state: str, timeout: float = 60) -> dict[str, Any]:
        """The tasks page's row of a task once Flower lists it in ``state``."""
        found: dict[str, Any] = {}

        def listed() -> bool:
            row = tasks_page(self.base, AUTH).get(task_id)
            found.update(row or {})
            return bool(row) and row["state"] == state

        assert wait_for(listed, timeout, interval=0.3), found
        return found


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("flower-tasks")
    (root / "flower").mkdir()
    (root / "media").mkdir()
    broker = RedisProcess(root / "redis").start()
    registry = Registry.connect(broker.url)
    try:
        port = free_port()
        credentials = {"KAMADO_FLOWER_BASIC_AUTH": ":".join(AUTH)}
        flower = start_flower(broker.url, root / "flower", port, **credentials)
        try:
            yield from _serve(f"http://127.0.0.1:{port}", flower.alive, broker, registry, root)
        finally:
            flower.stop(grace=10)
    finally:
        registry.close()
        broker.stop()


def _serve(
    base: str, alive: Any, broker: RedisProcess, registry: Registry, root: Path
) -> Iterator[Rig]:
    wait_until_up(f"{base}/healthcheck", 30, alive)
    ffmpeg = realtime_ffmpeg(root / "bin")
    with running_worker(
        broker.url, root / "worker", queues="encode.cpu",
        KAMADO_WORKER__BACKENDS='"auto"', KAMADO_ENCODE__FFMPEG=str(ffmpeg),
        KAMADO_ENCODE__PROGRESS_INTERVAL="0.5",
    ) as (app, hostname, _daemon):  # fmt: skip
        assert wait_for(
            lambda: get_json(f"{base}/api/workers?status=true", AUTH).get(hostname) is True,
            30,
            interval=0.3,
        )
        settings = client_settings(broker.url, root / "client")
        yield Rig(base, app, hostname, registry, settings, root / "media")


def test_a_running_encode_is_listed_under_started_with_progress_and_its_cancel_is_revoked(
    rig: Rig,
) -> None:
    task_id = rig.submit("長い番組 第1話.ts", "h264-x264", seconds=30)

    seen: dict[str, Any] = {}

    def encoding() -> bool:
        # The Started filter, as the page's button asks for it.
        row = tasks_page(rig.base, AUTH, "state:STARTED").get(task_id)
        seen.update(row or {})
        return bool(row) and bool(ENCODING.match(str(row["result"])))

    assert wait_for(encoding, 60, interval=0.3), seen
    assert seen["state"] == "STARTED"
    assert seen["worker"] == rig.hostname
    assert seen["args"].startswith("長い番組 第1話.ts · h264-x264 · job ")
    page = task_html(rig.base, AUTH, task_id)
    assert "長い番組 第1話.ts" in page and "encoding " in page and "x264" in page

    assert jobs.cancel(rig.registry, BrokerState(rig.registry), task_id[:20]) == "cancelling"
    ended = rig.row(task_id, "REVOKED")
    assert ended["result"] == "cancelled while it ran"
    assert task_id not in tasks_page(rig.base, AUTH, "state:FAILURE")


def test_a_broken_recording_fails_with_kamado_s_reason(rig: Rig) -> None:
    broken = rig.media / "壊れた録画.ts"
    broken.write_bytes(b"\x47" + bytes(range(256)) * 40)
    task_id = rig.submit_file(broken, "h264-x264")
    row = rig.row(task_id, "FAILURE")
    assert row["result"].startswith("failed: "), row["result"]
    assert "壊れた録画.ts" in row["result"]
    assert "Traceback" not in row["result"]
    assert row["args"].startswith("壊れた録画.ts · h264-x264")
    page = task_html(rig.base, AUTH, task_id)
    assert "failed: " in page


def test_a_waiting_job_that_is_cancelled_ends_revoked_not_pending(rig: Rig) -> None:
    # h264-intel waits on encode.gpu, which no worker of this module consumes.
    task_id = rig.submit("ＮＨＫ ニュース.ts", "h264-intel")
    assert rig.row(task_id, "PENDING")["result"] == "queued"
    deliverer = Deliverer(rig.settings)
    try:
        answer = jobs.cancel(deliverer.registry, deliverer.state, task_id[:20], app=deliverer.app)
    finally:
        deliverer.close()
    assert answer == "cancelled"
    assert rig.row(task_id, "REVOKED")["result"] == "cancelled while it waited"
    page = task_html(rig.base, AUTH, task_id)
    assert "cancelled while it waited" in page and "ＮＨＫ ニュース.ts" in page


def test_a_job_moved_to_the_cpu_queue_ends_revoked_and_its_new_task_runs(rig: Rig) -> None:
    old = rig.submit("移動する番組.ts", "h264-auto")
    assert rig.row(old, "PENDING")["result"] == "queued"
    deliverer = Deliverer(rig.settings)
    try:
        moved = Service(
            rig.settings, deliverer, Spool(rig.settings.state_dir / "spool")
        ).route_once()
    finally:
        deliverer.close()
    assert [m.job_id for m in moved] == [old[:20]]
    row = rig.row(old, "REVOKED")
    assert row["result"].startswith("moved → encode.cpu: no hardware worker up"), row["result"]
    assert "moved → encode.cpu: no hardware worker up" in task_html(rig.base, AUTH, old)
    newer = [
        r
        for r in tasks_page(rig.base, AUTH).values()
        if r["uuid"] != old and r["uuid"].startswith(old[:20])
    ]
    assert len(newer) == 1
    done = rig.row(newer[0]["uuid"], "SUCCESS")
    # done · x264 · 0.1 MB · 2 s of video in 2 s · 1.0× realtime
    assert done["result"].startswith("done · x264 · "), done["result"]
    assert "of video in" in done["result"] and "× realtime" in done["result"]
    record = rig.registry.get(old[:20])
    assert record is not None and record.state is JobState.DONE


def test_a_queued_job_s_waiting_reason_and_its_queue_are_shown_in_flower(
    rig: Rig,
) -> None:
    # h264-intel waits on encode.gpu, which no worker of this module consumes.
    task_id = rig.submit("ＢＳ 映画「海」.ts", "h264-intel")
    state = BrokerState(rig.registry)
    notices = WaitingNotices()

    def shown(words: str) -> bool:
        def listed() -> bool:
            row = tasks_page(rig.base, AUTH).get(task_id) or {}
            return row.get("state") == "PENDING" and row.get("result") == words

        return bool(wait_for(listed, 30, interval=0.3))

    try:
        alone = "no hardware worker up; no host agent is up to start the VM"
        assert notices.send(rig.app, rig.registry, state) == {task_id: alone}
        assert shown(f"queued · waiting: {alone}"), rig.row(task_id, "PENDING")
        assert notices.send(rig.app, rig.registry, state) == {}, "unchanged: not sent again"
        # The Broker page lists encode.gpu, which no online worker consumes, with its backlog.
        lengths = get_json(f"{rig.base}/api/queues/length", AUTH)["active_queues"]
        assert {q["name"]: q["messages"] for q in lengths}["encode.gpu"] == 1, lengths
        status, body = get(f"{rig.base}/broker", AUTH)
        assert status == 200 and "encode.gpu" in body.decode() and "encode.cpu" in body.decode()
        started = datetime(2026, 12, 2, 14, 2, tzinfo=UTC)
        last = "start: encode.gpu holds work"
        host = HostHeartbeat(
            name="vmhost", vm_state="shutoff", last_action=last, last_action_at=started
        )
        rig.registry.client.set(host_key("vmhost"), host.model_dump_json(), ex=60)
        told = (
            "no hardware worker up; host agent vmhost: VM shutoff, last started the VM at "
            "2026-12-02 14:02 UTC (encode.gpu holds work)"
        )
        assert notices.send(rig.app, rig.registry, state) == {task_id: told}
        assert shown(f"queued · waiting: {told}"), rig.row(task_id, "PENDING")
        assert "last started the VM at 2026-12-02 14:02 UTC" in task_html(rig.base, AUTH, task_id)
        # kamado status and watch say the same words (their listing computes them).
        (listed,) = [r for r in jobs.listing(rig.registry, state, states=[], limit=50)
                     if r["id"] == task_id[:20]]  # fmt: skip
        assert listed["waiting"] == told
    finally:
        rig.registry.client.delete(host_key("vmhost"))
        jobs.cancel(rig.registry, state, task_id[:20], app=rig.app)
    assert rig.row(task_id, "REVOKED")["result"] == "cancelled while it waited"


def test_the_worker_page_shows_every_backend_and_pool_resizing_is_refused(rig: Rig) -> None:
    workers = get_json(f"{rig.base}/api/workers?refresh=1", AUTH)
    lines = workers[rig.hostname]["conf"]["kamado_backend_probe"]
    by_backend = {line.split(" ", 1)[0]: line for line in lines}
    assert set(by_backend) == {"qsv", "vaapi", "x264"}, lines
    assert by_backend["x264"].startswith("x264 proven")
    for hardware in ("qsv", "vaapi"):
        # No GPU here: refused or absent, with ffmpeg's (or the build's) reason.
        assert by_backend[hardware].split(" ")[1] in ("refused", "absent"), lines
    assert any(": " in by_backend[h] for h in ("qsv", "vaapi")), lines
    status, body = get(f"{rig.base}/worker/{rig.hostname}", AUTH)
    assert status == 200
    assert "kamado_backend_probe" in body.decode() and "x264 proven" in body.decode()
    status, body = post(f"{rig.base}/api/worker/pool/grow/{rig.hostname}?n=1", AUTH)
    assert status == 403
    assert REFUSAL in body.decode()


def post(url: str, auth: tuple[str, str]) -> tuple[int, bytes]:
    """POST with an empty body and basic auth."""
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=b"", method="POST")
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (after checking its signature and CRC)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    crc = struct.unpack(">I", data[29:33])[0]
    assert zlib.crc32(data[12:29]) == crc
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_a_headless_browser_screenshot_of_the_tasks_page(rig: Rig, tmp_path: Path) -> None:
    running = rig.submit("ドラマ「夜明け」#3.ts", "h264-x264", seconds=30)
    state = BrokerState(rig.registry)
    waiting = rig.submit("ＢＳ 特集「山」.ts", "h264-intel")
    WaitingNotices().send(rig.app, rig.registry, state)
    assert wait_for(
        lambda: str(tasks_page(rig.base, AUTH).get(running, {}).get("result")).startswith(
            "encoding "
        ),
        60,
        interval=0.3,
    )
    shot = tmp_path / "flower-tasks.png"
    # Credentials in the address: Chromium answers Flower's basic-auth challenge with them.
    secret = urllib.parse.quote(PASSWORD, safe="")
    page = rig.base.replace("http://", f"http://{USER}:{secret}@") + "/tasks"
    browser = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1800,760",
        "--virtual-time-budget=10000",  # lets the page's own requests fill the table
    ]  # fmt: skip
    try:
        subprocess.run([*browser, f"--screenshot={shot}", page], capture_output=True,
                       timeout=120, check=False)  # fmt: skip
        dom = subprocess.run([*browser, "--dump-dom", page], capture_output=True,
                             timeout=120, check=False).stdout.decode()  # fmt: skip
    finally:
        jobs.cancel(rig.registry, state, running[:20])
        jobs.cancel(rig.registry, state, waiting[:20], app=rig.app)
    # What the screenshot shows, as text: the names and kamado's words in the table.
    assert "ドラマ「夜明け」#3.ts · h264-x264" in dom, dom[-2000:]
    assert "queued · waiting: no hardware worker up" in dom
    assert "encoding " in dom and "STARTED" in dom
    data = shot.read_bytes()
    assert png_size(data) == (1800, 760)
    assert len(data) > 20_000, "the page looks empty"
    # KAMADO_DOCS_SCREENSHOT=docs/flower-tasks.png keeps it (how the one in docs/ was made).
    keep = os.environ.get("KAMADO_DOCS_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
