"""A worker that stops receiving with work waiting is restarted by its watchdog, or exits.

The silent state is made for real: the worker's consumers are cancelled through
Celery's remote control (`cancel_consumer`), so a live worker with a free slot receives
nothing while its queue holds the message, as the workers of celery #8030 / #9054 did.
"""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.admin.web import get
from tests.integration.faults.conftest import PROFILES, Rig
from tests.support.media import sha256
from tests.support.procs import wait_for
from worker.admin.metrics import serve_metrics
from worker.broker.counters import read_counters
from worker.jobs import JobState

pytestmark = pytest.mark.integration

SILENCE = 5.0
QUEUES = ("encode.gpu", "encode.cpu")


def silence(rig: Rig, name: str) -> None:
    """Stop the worker consuming every queue, through the broker, as an admin could."""
    for queue in (*QUEUES, f"{name}.dq2"):  # and its own queue (live jobs): nothing at all
        replies = rig.app.control.cancel_consumer(queue, destination=[name], reply=True, timeout=5)
        assert replies, f"{name} did not answer cancel_consumer {queue}"
    assert wait_for(
        lambda: not (rig.app.control.inspect([name], timeout=2).active_queues() or {}).get(name),
        timeout=10,
    ), "the worker still consumes"


def actions(rig: Rig, name: str) -> dict[str, int]:
    counted = read_counters(rig.registry).watchdog
    return {action: n for (worker, action), n in counted.items() if worker == name}


def scraped_restarts(rig: Rig, name: str) -> float | None:
    server = serve_metrics(rig.settings, "127.0.0.1", 0, registry=rig.registry)
    try:
        status, body = get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 200
    finally:
        server.close()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "kamado_watchdog_actions_total" and sample.labels == {
                "worker": name,
                "action": "restart",
            }:
                return sample.value
    return None


def test_a_silent_worker_with_work_waiting_restarts_its_consumer_and_runs_the_job(
    rig: Rig,
) -> None:
    source = rig.source(clip=rig.clips.isdb_1080i)
    digest = sha256(source)
    _, name, daemon = rig.start_worker("a", KAMADO_WORKER__WATCHDOG_SILENCE=str(SILENCE))
    silence(rig, name)
    submitted = time.monotonic()
    job = rig.submit(source)
    record = rig.assert_done_once(job, source, digest)
    assert time.monotonic() - submitted >= SILENCE  # not before the configured silence
    assert daemon.alive()
    assert actions(rig, name) == {"restart": 1}
    assert scraped_restarts(rig, name) == 1.0  # the real endpoint, as Prometheus reads it
    log = daemon.log_tail(400)
    assert "restarting its consumer (restart 1)" in log
    assert record.worker == name


def test_with_action_exit_the_silent_worker_exits_non_zero_and_a_new_one_runs_the_job(
    rig: Rig,
) -> None:
    source = rig.source(clip=rig.clips.isdb_1080i)
    digest = sha256(source)
    env = {
        "KAMADO_WORKER__WATCHDOG_SILENCE": str(SILENCE),
        "KAMADO_WORKER__WATCHDOG_ACTION": "exit",
    }
    _, name, daemon = rig.start_worker("a", **env)
    silence(rig, name)
    job = rig.submit(source)
    assert wait_for(lambda: not daemon.alive(), timeout=SILENCE + 30), "the worker did not exit"
    assert daemon.returncode == 1
    assert "so systemd restarts the worker" in daemon.log_tail(400)
    assert actions(rig, name) == {"exit": 1}
    assert rig.registry.get(job.id).state is JobState.QUEUED  # type: ignore[union-attr]
    rig.start_worker("b")  # what systemd's Restart=on-failure does
    rig.assert_done_once(job, source, digest)


def test_idle_queues_and_a_worker_without_a_free_slot_never_trigger_the_watchdog(
    rig: Rig,
) -> None:
    _, idle_name, idle = rig.start_worker("idle", KAMADO_WORKER__WATCHDOG_SILENCE=str(SILENCE))
    silence(rig, idle_name)  # silent, but nothing waits for it
    time.sleep(SILENCE * 2)
    assert actions(rig, idle_name) == {} and idle.alive()
    idle.stop(grace=15)
    # The busy worker encodes with the veryslow preset: the first encode (the 8 s clip)
    # outlasts the silence even on an idle machine (the assertion below checks it; the 2 s
    # clip took 6 s there, under the 7.5 s needed), the waiting one is the short clip.
    sources = [
        rig.source(clip=clip, name=f"busy-{n}.ts")
        for n, clip in enumerate((rig.clips.long_1080i, rig.clips.isdb_1080i))
    ]
    digests = [sha256(s) for s in sources]
    busy_silence = SILENCE
    slow = json.dumps({"fault": {**PROFILES["fault"], "x264_preset": "veryslow"}})
    _, busy_name, busy = rig.start_worker(
        "busy", KAMADO_WORKER__WATCHDOG_SILENCE=str(busy_silence), KAMADO_PROFILES=slow
    )
    first = rig.submit(sources[0])
    rig.wait_encoding(first)
    # One encode runs (concurrency 1: no free slot) while the second job waits its turn.
    second = rig.submit(sources[1])
    started = time.monotonic()
    rig.wait_state(first, {JobState.DONE, JobState.FAILED}, timeout=120)
    assert time.monotonic() - started > busy_silence * 1.5, "the encode was too short to prove it"
    for job, source, digest in zip((first, second), sources, digests, strict=True):
        record = rig.wait_state(job, {JobState.DONE, JobState.FAILED}, timeout=120)
        assert record.state is JobState.DONE and record.worker == busy_name
        assert sha256(source) == digest
    time.sleep(busy_silence * 2)  # the queues idle again for longer than the silence
    assert actions(rig, busy_name) == {} and busy.alive()
    assert "restarting its consumer (restart" not in busy.log_tail(1000)
