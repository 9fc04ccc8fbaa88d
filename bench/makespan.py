"""Makespan of a backlog on one fast and one slow worker: kamado routing against FIFO.

Two real Celery worker processes run a timed stand-in for the encoder (registered here,
under the real task name, on an app with kamado's Celery config): it takes the job's
lease in the real registry, sleeps length ÷ speed while reporting progress with an ETA,
and finishes the job. The fast "hardware" worker reports qsv at ``--fast`` × realtime
and consumes encode.gpu; the slow "software" worker reports x264 at ``--slow`` × realtime
and consumes encode.cpu. Each publishes heartbeats (with its current job) and its speed
through worker/broker/presence.py, as real workers do.

- kamado: jobs are submitted by the scheduler's own delivery (routing picks the queue)
  and the service's routing pass runs every ``--interval`` seconds (50 ms);
- FIFO: the same jobs, in the same order, sent with plain ``send_task`` to one queue
  that both workers consume.

Each mode gets a fresh redis-server and fresh workers. With ``--repeats N`` the modes
alternate which goes first, so a slow spell of a shared machine hits both alike.

The ideal lower bound is max(total length ÷ (fast + slow), longest ÷ fast). Prints
makespan ÷ bound for every run and the median per mode, and how many jobs the slow
worker ran. Target: kamado ≤ 1.10 and better than FIFO.

    PYTHONPATH=. .venv/bin/python bench/makespan.py [--jobs 30] [--seed 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery

from scheduler.delivery.deliverer import Deliverer
from scheduler.service import Service
from scheduler.spool.durable import Spool
from scheduler.submission import Submission
from tests.support.redis_proc import RedisProcess
from worker.broker.heartbeat import BackendSpeed, WorkerHeartbeat
from worker.broker.presence import publish, record_speed
from worker.broker.registry import Registry
from worker.celery_app import celery_config
from worker.jobs import ENCODE_TASK, Job, JobState, Recording
from worker.progress import Progress
from worker.settings.model import Settings

ROOT = Path(__file__).resolve().parents[1]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def run_worker(url: str, name: str, queue: str, backend: str, speed: float) -> None:
    """A Celery worker whose encode task sleeps length ÷ speed (this process never returns)."""
    settings = Settings(broker_url=url)
    app = Celery("bench", set_as_current=False)
    app.conf.update(celery_config(settings, url))
    registry = Registry.connect(url)
    record_speed(registry, name, backend, None, speed)
    current: dict[str, str | None] = {"job": None}

    @app.task(name=ENCODE_TASK)
    def encode(payload: dict[str, Any]) -> dict[str, Any]:
        job = Job.model_validate(payload)
        attempt = secrets.token_hex(4)
        if registry.acquire(job.id, attempt, name).status != "ok":
            return {"skipped": True}
        current["job"] = job.id
        assert job.recording is not None and job.recording.duration_s
        seconds = job.recording.duration_s / speed
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            percent = 100 * (1 - left / seconds)
            registry.update(job.id, attempt, Progress(percent=percent, eta_s=left, backend=backend))
            time.sleep(min(left, 0.05))
        registry.finish(job.id, attempt, JobState.DONE, result={"backend": backend})
        current["job"] = None
        return {"job_id": job.id}

    def beat() -> None:
        speeds = [BackendSpeed(backend=backend, realtime=speed)]
        while True:
            hb = WorkerHeartbeat(hostname=name, queues=[queue, "encode.fifo"], backends=speeds,
                                 current_job=current["job"])  # fmt: skip
            publish(registry, hb, ttl=5)
            time.sleep(0.05)

    threading.Thread(target=beat, daemon=True).start()
    queues = os.environ.get("BENCH_QUEUES", queue)
    app.worker_main(["worker", "-Q", queues, "--pool", "solo", "-n", name, "--loglevel",
                     "WARNING", "--without-gossip", "--without-mingle"])  # fmt: skip


def start_workers(url: str, fast: float, slow: float, fifo: bool, logs: Path) -> list[Any]:
    """The two worker processes; FIFO mode makes both consume one queue."""
    procs = []
    for name, queue, backend, speed in (("fast@bench", "encode.gpu", "qsv", fast),
                                        ("slow@bench", "encode.cpu", "x264", slow)):  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if fifo:
            env["BENCH_QUEUES"] = "encode.fifo"
        argv = [sys.executable, __file__, "--worker", name, queue, backend, str(speed), url]
        log = (logs / f"{name}.log").open("w")
        procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log))
    app = Celery("ping", set_as_current=False, broker=url)
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=0.5) or []) < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"workers did not start; see {logs}")
    app.close()
    return procs


def make_jobs(count: int, seed: int) -> list[Job]:
    """Jobs whose recordings last 1-30 minutes (uniform), in a shuffled order."""
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        length = rng.uniform(60, 1800)
        rec = Recording(recorder="bench", start=EPOCH, end=EPOCH + timedelta(seconds=length))
        jobs.append(Job.create(f"/rec/{seed}-{i}.ts", "h264-auto", priority=7, recording=rec))
    return jobs


def wait_done(registry: Registry, jobs: list[Job], tick: Any = None) -> float:
    """Block until every job is done; returns the monotonic time it happened."""
    while True:
        if tick:
            tick()
        pipe = registry.client.pipeline(transaction=False)
        for job in jobs:
            pipe.hget(f"kamado:job:{job.id}", "state")
        if all(s == "done" for s in pipe.execute()):
            return time.monotonic()
        time.sleep(0.02)


def one_run(mode: str, jobs: list[Job], args: argparse.Namespace, root: Path) -> tuple[float, int]:
    """Makespan in seconds of one mode on a fresh redis-server, and the slow worker's job count."""
    root.mkdir(parents=True)
    redis = RedisProcess(root / "redis", appendonly=False).start()
    procs = start_workers(redis.url, args.fast, args.slow, mode == "fifo", root)
    settings = Settings(broker_url=redis.url, state_dir=root / "state",
                        scheduler={"routing": {"interval": args.interval}})  # fmt: skip
    deliverer = Deliverer(settings)
    try:
        time.sleep(0.3)  # a heartbeat or two
        start = time.monotonic()
        if mode == "fifo":
            for job in jobs:
                deliverer.registry.record(job, queue="encode.fifo")
                deliverer.app.send_task(ENCODE_TASK, args=[job.model_dump(mode="json")],
                                  queue="encode.fifo", priority=job.priority)  # fmt: skip
            end = wait_done(deliverer.registry, jobs)
        else:
            cluster = deliverer.cluster()
            for job in jobs:
                sub = Submission(
                    job=job,
                    origin="enqueue",
                    recorder_path=job.source,
                    estimate_s=job.recording.duration_s if job.recording else None,
                )
                deliverer.submit(sub, cluster)
            service = Service(settings, deliverer, Spool(root / "spool"))

            def tick() -> None:
                if service.due("route", args.interval):
                    service.route_once()

            end = wait_done(deliverer.registry, jobs, tick=tick)
        slow = sum(
            1 for j in jobs if (r := deliverer.registry.get(j.id)) and r.worker == "slow@bench"
        )
        return end - start, slow
    finally:
        deliverer.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        redis.stop()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        name, queue, backend, speed, url = sys.argv[2:7]
        run_worker(url, name, queue, backend, float(speed))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--fast", type=float, default=1500.0, help="× realtime")
    parser.add_argument("--slow", type=float, default=300.0, help="× realtime")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between passes")
    parser.add_argument("--repeats", type=int, default=1, help="runs per mode, alternating")
    args = parser.parse_args()
    jobs = make_jobs(args.jobs, args.seed)
    lengths = [j.recording.duration_s or 0 for j in jobs if j.recording]
    bound = max(sum(lengths) / (args.fast + args.slow), max(lengths) / args.fast)
    print(f"seed {args.seed}, jobs: {len(jobs)}, fast {args.fast:g}× and slow {args.slow:g}× "
          f"realtime, ideal lower bound {bound:.2f} s", flush=True)  # fmt: skip
    results: dict[str, list[float]] = {"kamado": [], "fifo": []}
    with tempfile.TemporaryDirectory(prefix="kamado-bench-makespan-") as tmp:
        for run in range(args.repeats):
            order = ("kamado", "fifo") if run % 2 == 0 else ("fifo", "kamado")
            for mode in order:
                seconds, slow = one_run(mode, jobs, args, Path(tmp) / f"{mode}-{run}")
                results[mode].append(seconds)
                ratio = seconds / bound
                print(
                    f"run {run + 1} {mode:7} makespan {seconds:6.2f} s   ÷ bound {ratio:5.3f}"
                    f"   slow worker ran {slow} jobs",
                    flush=True,
                )
    for mode, runs in results.items():
        median = statistics.median(runs)
        print(f"{mode:7} median makespan {median:6.2f} s   ÷ bound {median / bound:5.3f}")


if __name__ == "__main__":
    main()
