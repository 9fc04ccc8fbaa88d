"""`kamado workers` says which workers keep ARIB captions, from what their ffmpeg answered."""

from __future__ import annotations

import os

import pytest

from tests.integration.scheduler.conftest import Kamado
from tests.support.arib import plain_libavcodec
from tests.support.procs import wait_for
from worker.broker.heartbeat import WorkerHeartbeat
from worker.broker.presence import publish, workers
from worker.broker.registry import Registry
from worker.captions import caption_support
from worker.runtime.service import HeartbeatHook
from worker.settings.model import Settings

pytestmark = pytest.mark.integration


def test_workers_show_which_ffmpeg_decodes_arib_captions(
    kamado: Kamado, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_decoder = caption_support("ffmpeg")
    assert with_decoder.available, "scripts/setup.sh installs libavcodec-extra"
    monkeypatch.setenv("LD_LIBRARY_PATH", str(plain_libavcodec()))
    without = caption_support("ffmpeg")  # Debian's ffmpeg on its plain libavcodec
    monkeypatch.delenv("LD_LIBRARY_PATH")
    for name, support in (("cc@vm", with_decoder), ("plain@box", without)):
        beat = WorkerHeartbeat(hostname=name, queues=["encode.cpu"], captions=support)
        publish(registry, beat, ttl=30)
    shown = {w["hostname"]: w["captions"] for w in kamado.json("workers")["workers"]}
    assert shown["cc@vm"]["decoder"] == with_decoder.decoder
    assert shown["plain@box"]["decoder"] is None
    assert "libavcodec-extra" in shown["plain@box"]["reason"]
    wide = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "300"}
    table = kamado.run("workers", env=wide).stdout
    assert with_decoder.decoder is not None and with_decoder.decoder in table
    assert "no decoder" in table


def test_a_worker_heartbeat_carries_what_its_ffmpeg_answered_about_captions(
    kamado: Kamado, registry: Registry
) -> None:
    hook = HeartbeatHook(Settings(), kamado.broker_url, ["encode.cpu"], {"x264": None})
    hook.start()
    try:
        assert wait_for(lambda: workers(registry), timeout=30)
        (beat,) = workers(registry)
    finally:
        hook.stop()
    assert beat.captions == caption_support("ffmpeg")
