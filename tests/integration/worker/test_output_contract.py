"""The output contract end to end: a real `kamado worker` on a real redis-server.

The worker's own config allows outputs under out/ only, and out/ro is a local location
with ``writable = false``. Jobs come from a client session (as `kamado encode` sends
them) or as crafted Celery messages (`send_task`) that skip every submission check.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.media import Clips, leftovers, sha256
from tests.support.redis_proc import RedisProcess
from tests.support.workers import client_session, client_settings, running_worker
from worker import onebox
from worker.broker.registry import Registry
from worker.encode.ffprobe import parse_media, run_ffprobe
from worker.jobs import ENCODE_TASK, Job, JobState
from worker.outputs.names import MAX_NAME_BYTES
from worker.settings.model import Settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration


@dataclass
class World:
    """The running worker, the places it may write, and a client on the same broker."""

    app: Celery
    settings: Settings
    root: Path
    out: Path
    ro: Path

    def encode(self, jobs: list[Job], *, force: bool = False) -> list[onebox.Outcome]:
        box = client_session(self.app, self.settings)
        try:
            return onebox.encode_files(box, jobs, lambda _i: None, timeout=180, force=force)
        finally:
            box.registry.close()

    def crafted(self, job: Job, timeout: float = 60) -> tuple[str, float]:
        """Send a job straight to the queue, as Flower's task API or a stray script would."""
        started = time.monotonic()
        result = self.app.send_task(
            ENCODE_TASK, args=[job.model_dump(mode="json")], queue="encode.cpu"
        )
        result.get(timeout=timeout, propagate=False)
        assert result.state == "FAILURE", result.state
        return str(result.result), time.monotonic() - started


@pytest.fixture(scope="module")
def world(redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("contract")
    out, ro = root / "out", root / "out" / "ro"
    ro.mkdir(parents=True)
    locations = {"ro": {"kind": "local", "path": str(ro), "writable": False}}
    env = {
        "KAMADO_ENCODE__OUTPUT_DIR": str(out),
        "KAMADO_STAGING__LOCATIONS": json.dumps(locations),
    }
    with running_worker(redis_server.url, root / "state", **env) as (app, _name, _daemon):
        client = client_settings(redis_server.url, root / "state", encode={"output_dir": str(out)})
        yield World(app, client, root, out, ro)


def recording(clips: Clips, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(clips.isdb_1080i, directory / name))


def is_h264(path: Path) -> bool:
    info = parse_media(path, run_ffprobe("ffprobe", path))
    return info.video is not None and info.video.codec == "h264"


def test_two_profiles_of_one_recording_get_two_verified_outputs(world: World, clips: Clips) -> None:
    source = recording(clips, world.root / "two-profiles", "ニュース.ts")
    digest = sha256(source)
    jobs = [Job.create(str(source), p, output_dir=world.out) for p in ("h264-x264", "h264-auto")]
    outcomes = world.encode(jobs)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    names = sorted(Path(o.job.output).name for o in outcomes)
    assert names == ["ニュース (2).mp4", "ニュース.mp4"]
    assert all(is_h264(world.out / n) for n in names)
    assert sha256(source) == digest


def test_a_crafted_task_writing_over_a_recording_or_a_config_file_fails_and_writes_nothing(
    world: World, clips: Clips
) -> None:
    rec = world.root / "crafted"
    keep = recording(clips, world.out, "keep-this-recording.mp4")
    other = recording(clips, rec, "other.ts")
    config = world.out / "kamado.toml"
    config.write_text('broker_url = "redis://secret"\n', encoding="utf-8")
    registry = Registry.connect(str(world.app.conf.broker_url))
    try:  # kamado now knows keep-this-recording.mp4 as a recording (held, not run)
        held = Job.create(str(keep), "h264-x264", output=str(world.root / "held.mp4"))
        submit_job(world.app, registry, world.settings, held, held=True)
    finally:
        registry.close()
    before = {p: sha256(p) for p in (keep, other, config)}
    listing = sorted(os.listdir(world.out))
    cases = (
        (keep, "h264-x264", "is the recording of job"),
        (config, "h264-auto", "must be an .mp4 file"),
    )
    for target, profile, reason in cases:
        job = Job.create(str(other), profile, output=str(target))
        message, _ = world.crafted(job)
        assert reason in message and str(target) in message, message
        box = client_session(world.app, world.settings)
        record = box.registry.get(job.id)
        box.registry.close()
        assert record is not None and record.state is JobState.FAILED
        assert record.attempts == 1, "a contract failure is permanent, not retried"
    # A message reusing a known job's id with another output is stale or crafted: dropped.
    reused = held.model_copy(update={"output": str(world.out / "elsewhere.mp4")})
    message, _ = world.crafted(reused)
    assert "differ from the job the registry holds" in message, message
    assert {p: sha256(p) for p in before} == before
    assert sorted(os.listdir(world.out)) == listing


def test_a_crafted_task_outside_the_workers_places_or_on_a_read_only_location_writes_nothing(
    world: World, clips: Clips
) -> None:
    other = recording(clips, world.root / "places", "x.ts")
    for output, profile, reason in (
        (world.root / "places" / "x.mp4", "h264-x264", "outside the places outputs may go"),
        (world.ro / "x.mp4", "h264-auto", "location 'ro' has writable = false"),
    ):
        message, _ = world.crafted(Job.create(str(other), profile, output=str(output)))
        assert reason in message, message
        assert not output.exists()
    assert sorted(p.name for p in (world.root / "places").iterdir()) == ["x.ts"]


def test_a_fifo_source_fails_at_once_without_holding_the_worker(world: World) -> None:
    fifo = world.root / "live.ts"
    os.mkfifo(fifo)
    message, seconds = world.crafted(Job.create(str(fifo), "h264-x264", output_dir=world.out))
    assert "is a FIFO (named pipe), not a recording" in message
    assert seconds < 30  # the soft time limit is hours: the slot was never blocked


def test_a_216_byte_epgstation_name_encodes_and_a_longer_one_is_shortened(
    world: World, clips: Clips
) -> None:
    stem = "2026年12月01日21時00分00秒-ＮＨＫ総合１・東京-連続テレビ小説"
    while len((stem + ".mp4").encode()) < 216:
        stem += "あ" if len((stem + "あ.mp4").encode()) <= 216 else "x"
    longest = "長" * 84  # 252 bytes: "長…長.ts" is 255, its .mp4 would be 256
    sources = [recording(clips, world.root / "long", f"{s}.ts") for s in (stem, longest)]
    outcomes = world.encode(
        [Job.create(str(s), "h264-x264", output_dir=world.out) for s in sources]
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    first, second = (Path(o.job.output) for o in outcomes)
    assert first.name == f"{stem}.mp4"
    assert second.name.startswith("長" * 80) and len(second.name.encode()) <= MAX_NAME_BYTES
    assert is_h264(first) and is_h264(second)
    assert leftovers(world.out) == []


def test_a_file_kamado_wrote_is_replaced_on_force_but_a_users_file_never(
    world: World, clips: Clips
) -> None:
    source = recording(clips, world.root / "force", "again.ts")
    job = Job.create(str(source), "h264-x264", output_dir=world.out)
    (done,) = world.encode([job])
    assert done.ok and Path(done.job.output).name == "again.mp4"
    (forced,) = world.encode([job], force=True)
    assert forced.ok and forced.job.output == done.job.output  # kamado's own file: replaced
    Path(done.job.output).write_bytes(b"the user's own edit")
    (third,) = world.encode([job], force=True)
    assert third.ok and Path(third.job.output).name == "again (2).mp4"
    assert Path(done.job.output).read_bytes() == b"the user's own edit"


NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
STEMS = st.text(NAME_CHARS, min_size=1, max_size=40).map(lambda s: s.lstrip(".")).filter(bool)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stem=STEMS,
    planted=st.booleans(),
    profiles=st.lists(st.sampled_from(["h264-x264", "h264-auto"]), min_size=1, unique=True),
)
def test_equal_stems_profiles_and_planted_files_each_end_in_one_verified_output(
    world: World, clips: Clips, stem: str, planted: bool, profiles: list[str]
) -> None:
    case = world.out / "prop" / os.urandom(4).hex()  # inside the worker's output_dir
    out = case / "enc"
    out.mkdir(parents=True)
    sources = [recording(clips, case / d, f"{stem}.ts") for d in ("a", "b")]
    digests = {s: sha256(s) for s in sources}
    mine = {out / f"{stem}.mp4": b"a file the user made"} if planted else {}
    for path, data in mine.items():
        path.write_bytes(data)
    (case / "alias").symlink_to(case / "a", target_is_directory=True)
    spellings = [*map(str, sources), str(case / "alias" / sources[0].name),
                 f"{case}/b/../a/{sources[0].name}"]  # fmt: skip
    jobs = [Job.create(s, p, output_dir=out) for s in spellings for p in profiles]
    settings_ = world.settings.model_copy(
        update={"encode": world.settings.encode.model_copy(update={"output_dir": out})}
    )
    box = client_session(world.app, settings_)
    try:
        outcomes = onebox.encode_files(box, jobs, lambda _i: None, timeout=240)
    finally:
        box.registry.close()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert len(outcomes) == len(sources) * len(profiles), "one file, however spelled, one job"
    outputs = [Path(o.job.output) for o in outcomes]
    assert len(set(outputs)) == len(outcomes), "one output per job, never shared"
    assert all(p.parent == out and p not in mine and is_h264(p) for p in outputs)
    assert {p: p.read_bytes() for p in mine} == mine
    assert {s: sha256(s) for s in sources} == digests
    assert sorted(out.iterdir()) == sorted([*outputs, *mine])


def test_a_leftover_that_cannot_be_removed_does_not_break_the_job(
    world: World, clips: Clips
) -> None:
    source = recording(clips, world.root / "leftover", "left.ts")
    job = Job.create(str(source), "h264-x264", output_dir=world.out)
    # A directory under an earlier attempt's temp name: unlink() raises IsADirectoryError.
    # (Both the temp name of this version and the one before, which an upgraded worker
    # may find left over.)
    stale = world.out / f".kamado-{job.id}-0123456789ab.mp4"
    older = world.out / f".left.{job.id}.0123456789ab.kamado-part.mp4"
    for leftover in (stale, older):
        leftover.mkdir()
        (leftover / "keep").write_bytes(b"x")
    started = time.monotonic()
    (outcome,) = world.encode([job])
    assert outcome.ok, outcome.error
    assert time.monotonic() - started < 60  # no wait for a lease to expire
    assert (stale / "keep").read_bytes() == b"x" and (older / "keep").read_bytes() == b"x"
