"""`kamado hook epgstation` wall time: p50 and p95 with the broker up and down (spool).

Each run is a real process with EPGStation's environment (its variables plus PATH) and
a config file naming a private redis-server. Cases:

- ``up``: no scheduler service; the hook pings the broker, records and publishes.
- ``down``: the broker is killed; the hook spools (no Celery import).
- ``service``: a scheduler service holds the spool; the hook only spools.

Each case runs through the full ``kamado`` CLI and through ``python -m scheduler`` (the
scheduler's commands alone). The baseline, measured in the same run, is the same
interpreter starting the root CLI with ``--help`` (what every kamado command costs).

    .venv/bin/python bench/hook.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.redis_proc import RedisProcess
from worker.sample import make_sample

ROOT = Path(__file__).resolve().parents[1]
CLIS = {"kamado": ["-m", "worker.cli.main"], "python -m scheduler": ["-m", "scheduler"]}


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of argv; every run must exit 0."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stderr.decode(errors='replace')}")
    return times


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) in milliseconds."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-bench-hook-") as tmp:
        root = Path(tmp)
        redis = RedisProcess(root / "redis").start()
        config = root / "kamado.toml"
        config.write_text(f'broker_url = "{redis.url}"\nstate_dir = "{root / "state"}"\n')
        sample = make_sample(root / "sample.ts", seconds=1)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        counter = iter(range(1_000_000))

        def hook_env() -> dict[str, str]:
            n = next(counter)
            rec = root / "rec" / f"番組 {n}.ts"
            rec.parent.mkdir(exist_ok=True)
            shutil.copyfile(sample, rec)
            return {**env, "RECORDEDID": str(n), "RECPATH": str(rec), "NAME": "番組",
                    "STARTAT": "1700000000000", "ENDAT": "1700001800000", "DROP_CNT": "null",
                    "ERROR_CNT": "null", "SCRAMBLING_CNT": "null", "LOGPATH": "null"}  # fmt: skip

        def run_case(cli: list[str]) -> list[float]:
            out = []
            for _ in range(args.runs):
                argv = [sys.executable, *cli, "hook", "epgstation", "--config", str(config)]
                out.extend(timed(argv, hook_env(), 1))
            return out

        results: dict[str, list[float]] = {}
        results["baseline: kamado --help"] = timed(
            [sys.executable, *CLIS["kamado"], "--help"], env, args.runs
        )
        for name, cli in CLIS.items():
            results[f"{name}, broker up"] = run_case(cli)
        service = subprocess.Popen(
            [sys.executable, *CLIS["kamado"], "scheduler", "run", "--config", str(config)],
            env=env, cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)
        for name, cli in CLIS.items():
            results[f"{name}, service running (spool)"] = run_case(cli)
        service.terminate()
        service.wait(20)
        redis.kill()
        for name, cli in CLIS.items():
            results[f"{name}, broker down (spool)"] = run_case(cli)
        base = statistics.median(results["baseline: kamado --help"])
        print(f"{'case':45} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}")
        for name, values in results.items():
            ratio = statistics.median(values) / base
            print(f"{name:45} {pct(values, 50):8.0f} {pct(values, 95):8.0f} {ratio:13.2f}")


if __name__ == "__main__":
    main()
