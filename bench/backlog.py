"""`kamado enqueue` of a generated backlog against Celery's raw publish rate, same run.

Writes N small MPEG-TS files (two sync-byte packets each, old mtimes) under nested
directories with Japanese names, then times:

- raw: ``app.send_task`` of N kamado-shaped job payloads in a loop (the same app config
  kamado uses), the floor any Celery producer pays;
- kamado: the real CLI, ``kamado enqueue DIR --recursive --json --settle 0``, end to end
  (process start, scan with sync-byte sniff and open-file check, job ids, dedupe against
  the registry, record + publish per job).

Prints files per second for both and kamado ÷ raw. Target: at least 0.5.

    PYTHONPATH=. .venv/bin/python bench/backlog.py [--files 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.redis_proc import RedisProcess
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.jobs import ENCODE_TASK, Job
from worker.settings.model import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKETS = (bytes([0x47]) + bytes(187)) * 2


def make_backlog(root: Path, count: int) -> None:
    """``count`` tiny recordings, 500 per directory, last written a year ago."""
    old = time.time() - 365 * 86400
    for i in range(count):
        directory = root / f"{i // 500:03d} 月曜ドラマ"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"[{i:05d}] 番組 'テスト' 第{i}話.ts"
        path.write_bytes(PACKETS)
        os.utime(path, (old, old))


def raw_publish(url: str, count: int) -> float:
    """Seconds for Celery to publish ``count`` job-shaped tasks."""
    app = create_app(Settings(broker_url=url))
    payloads = [
        Job.create(f"/rec/raw/{i}.ts", "h264-auto", priority=7).model_dump(mode="json")
        for i in range(count)
    ]
    app.send_task(ENCODE_TASK, args=[payloads[0]], queue="bench.raw")  # connect first
    start = time.perf_counter()
    for payload in payloads:
        app.send_task(ENCODE_TASK, args=[payload], queue="bench.raw", priority=7)
    seconds = time.perf_counter() - start
    app.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-bench-backlog-") as tmp:
        root = Path(tmp)
        redis = RedisProcess(root / "redis", appendonly=False).start()
        try:
            make_backlog(root / "rec", args.files)
            raw = raw_publish(redis.url, args.files)
            Registry.connect(redis.url).client.flushall()
            config = root / "kamado.toml"
            config.write_text(f'broker_url = "{redis.url}"\nstate_dir = "{root / "state"}"\n')
            argv = [sys.executable, "-m", "worker.cli.main", "enqueue", str(root / "rec"),
                    "--recursive", "--json", "--settle", "0", "--config", str(config)]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                                  env={"PATH": os.environ["PATH"]}, timeout=3600)  # fmt: skip
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            queued = len(json.loads(done.stdout)["queued"])
        finally:
            redis.stop()
    if queued != args.files:
        raise SystemExit(f"queued {queued} of {args.files}")
    raw_rate, rate = args.files / raw, args.files / seconds
    print(f"files: {args.files}")
    print(f"celery raw publish: {raw:7.2f} s  {raw_rate:8.0f} tasks/s")
    print(f"kamado enqueue:     {seconds:7.2f} s  {rate:8.0f} files/s")
    print(f"kamado / raw:       {rate / raw_rate:7.2f}")


if __name__ == "__main__":
    main()
