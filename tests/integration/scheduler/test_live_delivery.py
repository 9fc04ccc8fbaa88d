"""Live jobs on a real redis-server: which worker follows a recording, what the finish hook
does in each phase, and what the reconciler leaves alone."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.delivery.deliverer import Deliverer
from scheduler.delivery.hook_jobs import Skipped, action_of, submission_for
from scheduler.live import choose_live_worker, direct_queue, tell_skipped
from scheduler.recorders import HookInput
from scheduler.submission import FAILED_RECORDING, Submission
from tests.integration.scheduler.conftest import Kamado
from worker.broker.heartbeat import BackendSpeed, WorkerHeartbeat
from worker.broker.keys import queue_lists
from worker.broker.live import Phase, abandon, read_live
from worker.broker.presence import publish, record_speed
from worker.broker.reconcile import reconcile
from worker.broker.registry import Registry, job_id_of
from worker.jobs import JobState, Recording, now
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

FAST, FASTER, SLOW = "celery@fast", "celery@faster", "celery@slow"
PROFILE = "h264-x264"  # encode.cpu, software only: routing sends it nowhere else
MakeDeliverer = Callable[..., Deliverer]


@pytest.fixture
def make_deliverer(kamado: Kamado, tmp_path: Path) -> Iterator[MakeDeliverer]:
    """Deliverers on the test's redis-server, with these config sections."""
    made: list[Deliverer] = []

    def make(**sections: Any) -> Deliverer:
        settings = Settings(
            broker_url=kamado.broker_url, state_dir=tmp_path / "state",
            encode={"default_profile": PROFILE}, **sections,
        )  # fmt: skip
        made.append(Deliverer(settings))
        return made[-1]

    yield make
    for deliverer in made:
        deliverer.close()


def worker(
    registry: Registry, name: str, speed: float | None, *, queues: tuple[str, ...] = (QUEUE_CPU,),
    current_job: str | None = None, ttl: float = 60,
) -> None:  # fmt: skip
    """A worker's heartbeat and its measured speed for PROFILE, as the worker writes them."""
    if speed is not None:
        record_speed(registry, name, "x264", None, speed, profile=PROFILE)
    record_speed(registry, name, "x264", None, 9.9)  # any profile: not what live goes by
    beat = WorkerHeartbeat(hostname=name, queues=list(queues), current_job=current_job,
                           backends=[BackendSpeed(backend="x264", realtime=9.9)])  # fmt: skip
    publish(registry, beat, ttl=ttl)


def messages(registry: Registry, *queues: str) -> list[str]:
    """The job ids of the messages waiting in these queues (every priority level)."""
    found = []
    for key in queue_lists(queues):
        found += [job_id_of(raw) or "" for raw in registry.client.lrange(key, 0, -1)]
    return found


def ordinary(registry: Registry) -> list[str]:
    return messages(registry, QUEUE_GPU, QUEUE_CPU)


def recording(**counts: Any) -> Recording:
    start = now() - timedelta(minutes=1)
    return Recording(recorder="epgstation", title="ニュース７", start=start,
                     end=start + timedelta(minutes=30), **counts)  # fmt: skip


def start(deliverer: Deliverer, path: Path, rec: Recording | None = None) -> tuple[str, str]:
    """The start hook's delivery: (what the hook reports, the job id)."""
    sub = submission_for(deliverer.settings, "epgstation",
                         HookInput(str(path), rec or recording(), live=True), None)  # fmt: skip
    assert isinstance(sub, Submission) and sub.job.live
    return action_of(sub, deliverer.submit(sub)), sub.job.id


def finish(deliverer: Deliverer, path: Path, tiny: Path, *, failed: bool = False,
           rec: Recording | None = None) -> str:  # fmt: skip
    """The finish hook's delivery, once the recording is complete: what the hook reports."""
    if not path.exists():
        shutil.copyfile(tiny, path)
    data = HookInput(str(path), rec or recording(), failed=failed)
    sub = submission_for(deliverer.settings, "epgstation", data, None)
    if isinstance(sub, Skipped):
        assert sub.job_id is not None
        told = tell_skipped(deliverer, sub.job_id)
        return told.outcome if told else "skipped"
    return action_of(sub, deliverer.submit(sub))


def test_the_fastest_alive_worker_of_the_profile_above_the_margin_follows_it(
    make_deliverer: MakeDeliverer, registry: Registry
) -> None:
    deliverer = make_deliverer()
    worker(registry, SLOW, 1.2)  # below 1.3× real time
    worker(registry, "celery@new", None)  # never finished a job of the profile
    worker(registry, "celery@gpu", 9.0, queues=(QUEUE_GPU,))  # does not serve encode.cpu
    worker(registry, "celery@gone", 9.0, ttl=0.1)  # its heartbeat expires
    time.sleep(0.3)
    assert choose_live_worker(registry, deliverer.settings, PROFILE) is None
    worker(registry, FAST, 2.0)
    worker(registry, FASTER, 3.5)
    choice = choose_live_worker(registry, deliverer.settings, PROFILE)
    assert choice is not None and (choice.hostname, choice.realtime) == (FASTER, 3.5)
    worker(registry, FASTER, 3.5, current_job="0" * 20)  # busy: an idle worker goes first
    choice = choose_live_worker(registry, deliverer.settings, PROFILE)
    assert choice is not None and choice.hostname == FAST
    strict = make_deliverer(live={"margin": 2.5})
    choice = choose_live_worker(registry, strict.settings, PROFILE)
    assert choice is not None and (choice.hostname, choice.busy) == (FASTER, True)


def test_a_live_job_goes_to_its_worker_s_own_queue_and_a_second_start_changes_nothing(
    make_deliverer: MakeDeliverer, registry: Registry, tmp_path: Path
) -> None:
    deliverer = make_deliverer()
    worker(registry, FAST, 2.0)
    rec = recording()
    said, job_id = start(deliverer, tmp_path / "ニュース７.ts", rec)
    assert said == "live: recording"
    record = registry.get(job_id)
    assert record is not None and record.state is JobState.QUEUED and record.job.live
    assert record.queue == QUEUE_CPU  # where it goes if it runs as an ordinary job
    assert job_id in registry.active_ids()
    live = read_live(registry, job_id)
    assert live is not None and (live.phase, live.worker) == (Phase.RECORDING, FAST)
    assert rec.end is not None and live.deadline == rec.end.timestamp() + 600
    assert messages(registry, direct_queue(FAST)) == [job_id] and ordinary(registry) == []
    again, _ = start(deliverer, tmp_path / "ニュース７.ts", rec)
    assert again == "exists"
    assert messages(registry, direct_queue(FAST)) == [job_id]


def test_with_no_worker_fast_enough_a_live_job_is_held_until_the_finish_hook(
    make_deliverer: MakeDeliverer, registry: Registry, tmp_path: Path
) -> None:
    deliverer = make_deliverer()
    worker(registry, SLOW, 1.0)
    said, job_id = start(deliverer, tmp_path / "a.ts")
    assert said == "live: waiting"
    record = registry.get(job_id)
    assert record is not None and record.state is JobState.HELD
    live = read_live(registry, job_id)
    assert live is not None and live.phase is Phase.WAITING
    assert live.reason == f"no worker measured at ≥ 1.3× real time for {PROFILE}"
    assert messages(registry, direct_queue(SLOW)) == [] and ordinary(registry) == []


# How a finish hook's recording differs (and the config that makes the difference).
KINDS: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "good": ({}, {}, False),
    "failed": ({}, {}, True),  # failed_recordings = "flag": queued, flagged
    "damaged": ({"scheduler": {"hold": {"drops": 10}}}, {"drop_count": 11}, False),
    "skip": ({"scheduler": {"hold": {"failed_recordings": "skip"}}}, {}, True),
}
# phase → kind → (the hook's word, the phase after, the job's state, ordinary messages)
EXPECTED: dict[str, dict[str, tuple[str, Phase, JobState | None, int]]] = {
    "recording, followed": {
        "good": ("live: following", Phase.FINISHED, JobState.STAGING, 0),
        "failed": ("live: stopping", Phase.REJECTED, JobState.STAGING, 0),
        "damaged": ("live: stopping", Phase.REJECTED, JobState.STAGING, 0),
        "skip": ("live: stopping", Phase.REJECTED, JobState.STAGING, 0),
    },
    **{
        phase: {
            "good": ("released", Phase.ORDINARY, JobState.QUEUED, 1),
            "failed": ("released", Phase.ORDINARY, JobState.QUEUED, 1),
            "damaged": ("released: held", Phase.ORDINARY, JobState.HELD, 0),
            "skip": ("cancelled", Phase.ORDINARY, JobState.CANCELLED, 0),
        }
        for phase in ("recording, not taken", "waiting", "abandoned")
    },
}
AFTER = {"failed": "queue", "damaged": "hold", "skip": "cancel"}


def live_job(deliverer: Deliverer, registry: Registry, phase: str, path: Path) -> str:
    """A live job in ``phase``, reached the way the start hook and a live attempt reach it."""
    if phase != "waiting":
        worker(registry, FAST, 2.0)
    said, job_id = start(deliverer, path)
    assert said == ("live: waiting" if phase == "waiting" else "live: recording")
    if phase in ("recording, followed", "abandoned"):
        assert registry.acquire(job_id, "att-1", FAST).status == "ok"  # the live attempt
    if phase == "abandoned":  # it gave up before the finish hook, as a live attempt does
        assert abandon(registry, job_id, "the feed stalled") == "wait"
        assert registry.finish(job_id, "att-1", JobState.HELD, error="stalled", kind="live")
    return job_id


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("phase", list(EXPECTED))
def test_the_finish_hook_tells_a_live_job_in_each_phase(
    make_deliverer: MakeDeliverer, registry: Registry, tmp_path: Path, tiny_ts: Path,
    phase: str, kind: str,
) -> None:  # fmt: skip
    config, counts, failed = KINDS[kind]
    deliverer = make_deliverer(**config)
    path = tmp_path / "録画 中.ts"
    job_id = live_job(deliverer, registry, phase, path)
    said = finish(deliverer, path, tiny_ts, failed=failed, rec=recording(**counts))
    word, then, state, published = EXPECTED[phase][kind]
    assert said == word
    live = read_live(registry, job_id)
    record = registry.get(job_id)
    assert live is not None and record is not None
    assert (live.phase, record.state) == (then, state)
    assert ordinary(registry) == [job_id] * published
    if phase != "recording, followed":
        assert messages(registry, direct_queue(FAST)) == []  # never started late
    if kind != "good" and then is Phase.REJECTED:
        assert live.after == AFTER[kind]
    if kind == "failed":
        assert FAILED_RECORDING in deliverer.state.flags([job_id])[job_id]
    if state is JobState.QUEUED:
        assert job_id in registry.active_ids()  # the reconciler sees it if it is lost
        again = finish(deliverer, path, tiny_ts, failed=failed, rec=recording(**counts))
        assert again == "exists" and ordinary(registry) == [job_id]


def test_the_reconciler_leaves_a_recording_live_job_alone_and_holds_one_past_its_deadline(
    make_deliverer: MakeDeliverer, registry: Registry, tmp_path: Path, tiny_ts: Path
) -> None:
    deliverer = make_deliverer(live={"finish_margin": 0})
    worker(registry, FAST, 2.0)
    _, waiting = start(make_deliverer(live={"margin": 50}), tmp_path / "waiting.ts")
    _, sent = start(deliverer, tmp_path / "sent.ts")
    old = recording()
    assert old.start is not None
    over = old.model_copy(update={"start": old.start - timedelta(hours=1),
                                  "end": old.start - timedelta(minutes=1)})  # fmt: skip
    _, overdue = start(deliverer, tmp_path / "overdue.ts", over)
    assert sorted(messages(registry, direct_queue(FAST))) == sorted([sent, overdue])
    passed = reconcile(deliverer.app, registry, grace=0.0, recheck=0.0)
    assert passed.requeued == [] and passed.failed == []
    assert passed.held == [overdue]
    assert ordinary(registry) == []
    assert messages(registry, direct_queue(FAST)) == [sent]
    for job_id, phase, state in ((waiting, Phase.WAITING, JobState.HELD),
                                 (sent, Phase.RECORDING, JobState.QUEUED),
                                 (overdue, Phase.ABANDONED, JobState.HELD)):  # fmt: skip
        live, record = read_live(registry, job_id), registry.get(job_id)
        assert live is not None and record is not None
        assert (live.phase, record.state) == (phase, state), job_id
    assert finish(deliverer, tmp_path / "overdue.ts", tiny_ts, rec=over) == "released"
    assert ordinary(registry) == [overdue]


def test_the_reconciler_publishes_a_finished_live_job_whose_attempt_died(
    make_deliverer: MakeDeliverer, registry: Registry, tmp_path: Path, tiny_ts: Path,
    kamado: Kamado,
) -> None:  # fmt: skip
    deliverer = make_deliverer()
    worker(registry, FAST, 2.0)
    path = tmp_path / "a.ts"
    _, job_id = start(deliverer, path)
    short = Registry.connect(kamado.broker_url, lease_ttl=1.0)
    try:
        assert short.acquire(job_id, "att-1", FAST).status == "ok"
        assert finish(deliverer, path, tiny_ts) == "live: following"
        time.sleep(1.3)  # the live attempt stops renewing its lease: it died
    finally:
        short.close()
    passed = reconcile(deliverer.app, registry, grace=0.0, recheck=0.0)
    assert passed.requeued == [job_id]
    assert ordinary(registry) == [job_id]
    live = read_live(registry, job_id)
    assert live is not None and live.phase is Phase.FINISHED  # its next attempt is ordinary
