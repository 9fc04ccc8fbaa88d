"""redis-server killed and restarted again and again under a queued load: the worker
receives the next message after every restart, and every job ends done.

The silent state of celery #8030 / #9054 is rare but real here: a clean run of 110
restarts once, then a CI run where the worker logged "Restoring 1 unacknowledged
message(s)" after a refused connection and received nothing more. So the worker runs as
deployed, with its consumer watchdog on; the promise is that the worker never stays
silent, whichever way it recovers (by itself, or by the watchdog restarting its
consumer, which the log and the counters then show).
"""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.faults.conftest import Rig
from tests.support.procs import wait_for
from worker.broker.counters import read_counters
from worker.jobs import JobState

pytestmark = pytest.mark.integration

RESTARTS = 8
SILENCE = 5.0  # the watchdog's silence, well under the wait for progress below


@pytest.mark.timeout(400)
def test_a_worker_keeps_receiving_after_every_one_of_many_redis_restarts(rig: Rig) -> None:
    chance = random.Random(8030)
    sources = [
        rig.source(clip=rig.clips.isdb_1080i, name=f"rec-{n}.ts") for n in range(2 * RESTARTS + 2)
    ]
    _, name, daemon = rig.start_worker("a", KAMADO_WORKER__WATCHDOG_SILENCE=str(SILENCE))
    rig.start_reconciler()
    jobs = [rig.submit(s) for s in sources]

    def done() -> int:
        return sum(1 for j in jobs if (r := rig.registry.get(j.id)) and r.state is JobState.DONE)

    def encoding() -> bool:
        for job in jobs:
            record = rig.registry.get(job.id)
            if record and record.state is JobState.ENCODING and record.progress:
                return record.progress.frame > 0
        return False

    for restart in range(RESTARTS):
        # Mid-encode with messages queued behind it, as in the CI run that went silent.
        assert wait_for(encoding, timeout=60), "nothing started encoding"
        time.sleep(chance.uniform(0, 0.5))
        rig.redis.kill()
        time.sleep(chance.uniform(0.2, 2.0))
        rig.redis.start()
        before = done()
        assert wait_for(lambda b=before: done() >= b + 2, timeout=60, interval=0.2), (
            f"{name} silent after restart {restart + 1}: {done()} done\n{daemon.log_tail(40)}"
        )
    for job in jobs:
        record = rig.wait_state(job, {JobState.DONE, JobState.FAILED}, timeout=180)
        assert record.state is JobState.DONE, record
    restarts = read_counters(rig.registry).watchdog.get((name, "restart"), 0)
    log = daemon.log_tail(10**6)
    # Each watchdog restart is logged where the admin reads it, and counted.
    assert log.count("restarting its consumer (restart") == restarts, log[-2000:]
    assert daemon.alive()
