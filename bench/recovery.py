"""Recovery time: from killing a worker mid-encode to the job running again elsewhere.

Starts a real redis-server, two real `kamado worker` processes and the real scheduler
service (`kamado scheduler run`, which runs the reconciler), all with the default job
settings, submits a long job, SIGKILLs the worker that runs it, and measures until the
registry shows a new attempt running on the other worker. Prints the seconds and the
ratio to the bound the design promises: lease TTL + reconcile interval.

    .venv/bin/python bench/recovery.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.redis_proc import RedisProcess
from tests.support.workers import running_worker
from worker import process
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.encode.sample import make_sample
from worker.jobs import Job, JobState
from worker.settings.model import JobsSettings, Settings
from worker.submit import submit_job

SLOW = {"slow": {"backends": ["x264"], "x264_preset": "veryslow", "height": None}}


def one_round(root: Path, clip: Path) -> float:
    redis = RedisProcess(root / "redis").start()
    env = {"KAMADO_PROFILES": json.dumps(SLOW)}
    settings = Settings(broker_url=redis.url, state_dir=root / "client", profiles=SLOW)
    app = create_app(settings)
    registry = Registry.connect(redis.url)
    scheduler = process.Daemon(
        [sys.executable, "-m", "worker.cli.main", "scheduler", "run"],
        env={"KAMADO_BROKER_URL": redis.url, "KAMADO_STATE_DIR": str(root / "sched"),
             "KAMADO_PROFILES": json.dumps(SLOW), "KAMADO_METRICS__ENABLED": "false"},
        log=root / "scheduler.log",
    )  # fmt: skip
    try:
        with running_worker(redis.url, root / "a", **env) as (_, name_a, daemon_a), \
             running_worker(redis.url, root / "b", **env) as (_, _name_b, daemon_b):  # fmt: skip
            source = Path(shutil.copy2(clip, root / "rec.ts"))
            (root / "out").mkdir(exist_ok=True)
            job = Job.create(str(source), "slow", output_dir=root / "out")
            submit_job(app, registry, settings, job)
            while True:
                record = registry.get(job.id)
                if record and record.progress and record.progress.frame > 0:
                    break
                time.sleep(0.1)
            victim = daemon_a if record.worker == name_a else daemon_b
            os.killpg(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            while True:
                record = registry.get(job.id)
                if (
                    record
                    and record.attempts >= 2
                    and record.state
                    in (JobState.STAGING, JobState.ENCODING, JobState.VERIFYING, JobState.DONE)
                ):
                    return time.monotonic() - killed
                time.sleep(0.2)
    finally:
        scheduler.stop(grace=5)
        registry.close()
        app.close()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    jobs = JobsSettings()
    bound = jobs.lease_ttl + jobs.reconcile_interval
    with tempfile.TemporaryDirectory(prefix="kamado-recovery-") as tmp:
        clip = make_sample(Path(tmp) / "clip.ts", seconds=60)
        times = []
        for n in range(args.rounds):
            root = Path(tmp) / f"round{n}"
            root.mkdir()
            seconds = one_round(root, clip)
            times.append(seconds)
            print(f"round {n + 1}: running again {seconds:.1f} s after the kill")
    median = statistics.median(times)
    print(
        f"default lease TTL {jobs.lease_ttl:g} s + reconcile interval "
        f"{jobs.reconcile_interval:g} s = bound {bound:g} s"
    )
    print(
        f"median recovery {median:.1f} s; ratio to the bound = {median / bound:.2f} "
        "(target <= 1.00)"
    )


if __name__ == "__main__":
    main()
