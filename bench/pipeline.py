"""A backlog of remote recordings on one worker: does prefetch hide the transfers?

Starts a private OpenSSH sshd on a loopback port (the recorder), a redis-server and one
real `kamado worker` (x264, concurrency 1) whose recordings live on an SFTP location.
Submits a backlog of N copies of a generated 1080i recording at once and measures the
time from submission to the last job done, against the sum of the ffmpeg times the jobs
report (``encode_seconds``). Prints total ÷ sum (target: at most 1.05), with prefetch on
and, for comparison, off.

    python bench/pipeline.py [--jobs 5] [--seconds 30] [--dir /var/tmp] [--only on|off]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.prefetch.remote_worker import (
    sftp_location,
    wait_final,
    write_worker_config,
)
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess
from tests.support.workers import client_settings, running_worker
from worker.broker.registry import AttemptRecord, JobRecord, Registry
from worker.encode.sample import make_sample
from worker.jobs import Job, JobState
from worker.submit import submit_job


def run_backlog(
    base: Path, sshd: SshdProcess, redis: RedisProcess, sample: Path, jobs: int, prefetch: bool
) -> tuple[float, float, list[float]]:
    """One backlog on a fresh worker: (total seconds, sum of encode seconds, each encode)."""
    label = "on" if prefetch else "off"
    recorder = base / f"recorder-{label}"
    recorder.mkdir()
    for n in range(jobs):
        shutil.copyfile(sample, recorder / f"録画 {n + 1}.ts")
    location = sftp_location(
        host="127.0.0.1", port=sshd.port, user=sshd.user, key_file=sshd.user_key,
        known_hosts=sshd.known_hosts, root=recorder,
    )  # fmt: skip
    config = write_worker_config(
        base / f"kamado-{label}.toml",
        scratch=base / f"scratch-{label}",
        location=location,
        staging={"prefetch": prefetch},
    )
    settings = client_settings(redis.url, base / f"client-{label}")
    registry = Registry.connect(redis.url)
    registry.client.flushdb()
    batch = [Job.create(f"sftp://recorder/録画 {n + 1}.ts", "h264-x264") for n in range(jobs)]
    with running_worker(redis.url, base / f"worker-{label}", KAMADO_CONFIG=str(config)) as (
        app, _name, _daemon,
    ):  # fmt: skip
        started = time.perf_counter()
        for job in batch:
            submit_job(app, registry, settings, job)
        records = wait_final(registry, [j.id for j in batch], 60 + jobs * 600)
        total = time.perf_counter() - started
    registry.close()
    failed = [r for r in records.values() if r.state is not JobState.DONE]
    if failed:
        raise SystemExit(f"a job failed: {failed[0].error}")
    encodes = [float((r.result or {})["encode_seconds"]) for r in records.values()]
    attempts = sorted((r.history[-1] for r in records.values()), key=lambda a: a.started_at)
    inside = [
        (a.ended_at - a.started_at).total_seconds() - e
        for a, e in zip(attempts, encodes_by_start(records, attempts), strict=True)
        if a.ended_at is not None
    ]
    gaps = [
        (b.started_at - a.ended_at).total_seconds()
        for a, b in itertools.pairwise(attempts)
        if a.ended_at is not None
    ]
    print(
        f"  per job: {sum(inside) / len(inside):.2f} s in the attempt besides ffmpeg "
        f"(stage, probe, verify, push), {sum(gaps) / max(len(gaps), 1):.2f} s between attempts"
    )
    return total, sum(encodes), encodes


def encodes_by_start(records: dict[str, JobRecord], attempts: list[AttemptRecord]) -> list[float]:
    """The encode seconds of each attempt, in the order of ``attempts``."""
    by_attempt = {r.history[-1].attempt_id: r for r in records.values()}
    return [float((by_attempt[a.attempt_id].result or {})["encode_seconds"]) for a in attempts]


def main() -> None:
    """Run the backlog with prefetch on and off and print total ÷ sum of encode times."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each recording")
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: tmp)")
    parser.add_argument("--only", choices=["on", "off"], default=None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kamado-pipeline-", dir=args.dir))
    sshd = SshdProcess(base / "sshd").start()
    redis = RedisProcess(base / "redis").start()
    try:
        sample = make_sample(base / "sample.ts", seconds=args.seconds)
        mib = sample.stat().st_size / 2**20
        print(
            f"{args.jobs} recordings of {args.seconds:g} s ({mib:.1f} MiB each) over loopback SFTP"
        )
        modes = [args.only == "on"] if args.only else [True, False]
        for prefetch in modes:
            total, encoded, each = run_backlog(base, sshd, redis, sample, args.jobs, prefetch)
            print(
                f"prefetch {'on ' if prefetch else 'off'}: total {total:7.2f} s, "
                f"sum of encodes {encoded:7.2f} s "
                f"(each {min(each):.2f}-{max(each):.2f} s), "
                f"total / encodes = {total / encoded:.3f}"
            )
    finally:
        redis.stop()
        sshd.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
