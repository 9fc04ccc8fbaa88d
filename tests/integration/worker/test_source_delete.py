"""encode.delete_source = "after_verified" on a real `kamado worker` and redis-server.

Only a recording the recorder reported clean, whose job is done, is deleted; a recording
with drops, one without counts, or one the scheduler flagged after the job was made
(EPGStation's failed hook after its finish hook) stays byte for byte.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery

from tests.support.media import leftovers, sha256
from tests.support.redis_proc import RedisProcess
from tests.support.workers import client_session, client_settings, running_worker
from worker import onebox
from worker.broker.keys import FLAGS
from worker.broker.registry import Registry
from worker.encode.ffprobe import parse_media, run_ffprobe
from worker.encode.sample import make_sample
from worker.jobs import Job, Recording
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

CLEAN = Recording(recorder="epgstation", title="番組", drop_count=0, error_count=0,
                  scrambling_count=0)  # fmt: skip


@dataclass
class World:
    app: Celery
    settings: Settings
    rec: Path
    out: Path
    clip: Path


@pytest.fixture(scope="module")
def world(redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("delete")
    rec, out = root / "rec", root / "out"
    rec.mkdir()
    out.mkdir()
    clip = make_sample(root / "clip.ts", seconds=1, width=720, height=480, aspect="4:3")
    env = {
        "KAMADO_ENCODE__OUTPUT_DIR": str(out),
        "KAMADO_ENCODE__DELETE_SOURCE": "after_verified",
    }
    with running_worker(redis_server.url, root / "state", **env) as (app, _name, _daemon):
        client = client_settings(redis_server.url, root / "state", encode={"output_dir": str(out)})
        yield World(app, client, rec, out, clip)


def copy(world: World, name: str) -> Path:
    return Path(shutil.copy2(world.clip, world.rec / name))


def is_h264(path: Path) -> bool:
    info = parse_media(path, run_ffprobe("ffprobe", path))
    return info.video is not None and info.video.codec == "h264"


def test_only_the_clean_recordings_source_is_deleted_after_its_verified_output(
    world: World,
) -> None:
    sources = {n: copy(world, f"{n}.ts") for n in ("clean", "drops", "unknown", "flagged")}
    digests = {n: sha256(p) for n, p in sources.items() if n != "clean"}
    recordings = {
        "clean": CLEAN,
        "drops": CLEAN.model_copy(update={"drop_count": 12}),
        "unknown": None,
        "flagged": CLEAN,
    }
    jobs = {
        n: Job.create(str(p), "h264-x264", output_dir=world.out, recording=recordings[n])
        for n, p in sources.items()
    }
    registry = Registry.connect(str(world.app.conf.broker_url))
    try:  # the failed hook fired after the finish hook had made the job: only a flag
        flag = ["the recorder reported the recording as failed"]
        registry.client.hset(FLAGS, jobs["flagged"].id, json.dumps(flag))
    finally:
        registry.close()
    box = client_session(world.app, world.settings)
    try:
        outcomes = onebox.encode_files(box, list(jobs.values()), lambda _i: None, timeout=240)
    finally:
        box.registry.close()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert all(is_h264(Path(o.job.output)) for o in outcomes)
    assert not sources["clean"].exists()
    assert {n: sha256(sources[n]) for n in digests} == digests
    assert leftovers(world.out) == []
