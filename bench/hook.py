"""`kamado hook epgstation` wall time: p50 and p95 with the broker up and down (spool).

Each run is a real process with EPGStation's environment (its variables plus PATH) and
a config file naming a private redis-server. The hook validates its input, spools it and
starts a detached delivery; the bench waits for that delivery to end between runs (not
timed: a recorder starts hooks minutes apart, and the delivery is not the hook's wait).
Cases:

- ``broker up``: no scheduler service; each hook starts a delivery that submits the job.
- ``service running``: a scheduler service holds the spool and delivers.
- ``broker down``: the broker is killed; each hook's delivery finds it away.
- ``--wait, broker up``: the hook delivers in its own process (``--wait``).
- ``config changed``: the first hook after each edit of the config validates it in full.
- ``burst of N, broker up`` / ``broker frozen``: N hooks started at once (tuners that end
  in the same second), ``--rounds`` times; each hook's own wall time is one sample. With
  the broker frozen (SIGSTOP) the one delivery waits on it and every later hook leaves
  its entry to that delivery; the most delivery processes seen at once is printed.

The baseline, measured in the same run, is the same interpreter starting the root CLI
with ``--help`` (what every typer-based kamado command costs).

    PYTHONPATH=. .venv/bin/python bench/hook.py [--runs 30] [--burst 8] [--rounds 10]
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
from collections.abc import Callable
from pathlib import Path

from tests.support.procs import pids_with
from tests.support.redis_proc import RedisProcess
from worker.registry import Registry
from worker.sample import make_sample

ROOT = Path(__file__).resolve().parents[1]
KAMADO = [sys.executable, "-m", "worker.cli.main"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of argv, which must exit 0."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode(errors='replace')}")
    return seconds


def deliveries_running() -> bool:
    """True while a detached `spool flush` started by a hook is still running."""
    return bool(pids_with("spool\0flush\0", program=b""))


def settle(until: Callable[[], bool] = lambda: True, limit: float = 30.0) -> None:
    """Wait until no delivery runs and ``until`` holds."""
    deadline = time.monotonic() + limit
    while (deliveries_running() or not until()) and time.monotonic() < deadline:
        time.sleep(0.05)


def burst(argvs: list[tuple[list[str], dict[str, str]]]) -> tuple[list[float], int]:
    """Start every hook at once; each one's wall seconds, and the most deliveries seen."""
    started = []
    for argv, env in argvs:
        at = time.perf_counter()
        started.append((at, subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE)))  # fmt: skip
    seconds: list[float | None] = [None] * len(started)
    most = 0
    while any(s is None for s in seconds):
        for index, (at, proc) in enumerate(started):
            if seconds[index] is None and proc.poll() is not None:
                seconds[index] = time.perf_counter() - at
                if proc.returncode != 0:
                    err = proc.stderr.read() if proc.stderr else b""
                    raise SystemExit(f"a burst hook failed: {err.decode(errors='replace')}")
        most = max(most, len(pids_with("spool\0flush\0", program=b"")))
        time.sleep(0.002)
    for _, proc in started:
        if proc.stderr:
            proc.stderr.close()
    return [s for s in seconds if s is not None], most


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) in milliseconds."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--burst", type=int, default=8, help="hooks started at once")
    parser.add_argument("--rounds", type=int, default=10, help="bursts per burst case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-bench-hook-") as tmp:
        root = Path(tmp)
        redis = RedisProcess(root / "redis").start()
        registry = Registry.connect(redis.url)
        config = root / "kamado.toml"
        config.write_text(f'broker_url = "{redis.url}"\nstate_dir = "{root / "state"}"\n')
        spool = root / "state" / "spool"
        sample = make_sample(root / "sample.ts", seconds=1)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_CACHE_HOME": str(root)}
        counter = iter(range(1_000_000))

        def hook_env() -> dict[str, str]:
            n = next(counter)
            rec = root / "rec" / f"番組 {n}.ts"
            rec.parent.mkdir(exist_ok=True)
            shutil.copyfile(sample, rec)
            return {**env, "RECORDEDID": str(n), "RECPATH": str(rec), "NAME": "番組",
                    "STARTAT": "1700000000000", "ENDAT": "1700001800000", "DROP_CNT": "null",
                    "ERROR_CNT": "null", "SCRAMBLING_CNT": "null", "LOGPATH": "null"}  # fmt: skip

        def spool_empty() -> bool:
            return not any(spool.glob("*.json"))

        def run_case(
            extra: tuple[str, ...] = (), until: Callable[[], bool] = spool_empty, edit: bool = False
        ) -> list[float]:
            out = []
            for n in range(args.runs):
                if edit:  # a changed config (mtime and size) must be validated again
                    with config.open("a") as fh:
                        fh.write(f"# edit {n}\n")
                argv = [*KAMADO, "hook", "epgstation", *extra, "--config", str(config)]
                out.append(timed(argv, hook_env()))
                settle(until)
            return out

        def run_bursts(wait: bool = True) -> tuple[list[float], int]:
            out: list[float] = []
            most = 0
            for _ in range(args.rounds):
                argv = [*KAMADO, "hook", "epgstation", "--config", str(config)]
                seconds, seen = burst([(argv, hook_env()) for _ in range(args.burst)])
                out += seconds
                most = max(most, seen)
                if wait:
                    settle(spool_empty)
                else:  # the delivery waits on the frozen broker; the next burst comes anyway
                    time.sleep(0.5)
            return out, most

        results: dict[str, list[float]] = {}
        results["baseline: kamado --help"] = [
            timed([*KAMADO, "--help"], env) for _ in range(args.runs)
        ]
        run_case()  # the first hook validates the config; warm-up runs are not counted
        results["broker up (spool, delivery started)"] = run_case()
        jobs = len(registry.list())
        results["--wait, broker up"] = run_case(("--wait",))
        service = subprocess.Popen(
            [*KAMADO, "scheduler", "run", "--config", str(config)],
            env=env, cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)
        results["service running (spool)"] = run_case()
        service.terminate()
        service.wait(20)
        results["config changed (full validation)"] = run_case(edit=True)
        up_name = f"burst of {args.burst}, broker up"
        results[up_name], most_up = run_bursts()
        redis.pause()
        frozen_name = f"burst of {args.burst}, broker frozen"
        results[frozen_name], most_frozen = run_bursts(wait=False)
        frozen_waiting = len(list(spool.glob("*.json")))
        redis.resume()
        settle(spool_empty, limit=300)
        frozen_left = len(list(spool.glob("*.json")))
        registry.close()
        redis.kill()
        results["broker down (spool)"] = run_case(until=lambda: True)
        waiting = len(list(spool.glob("*.json")))
        base = statistics.median(results["baseline: kamado --help"])
        print(f"{'case':40} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}")
        for name, values in results.items():
            ratio = statistics.median(values) / base
            print(f"{name:40} {pct(values, 50):8.0f} {pct(values, 95):8.0f} {ratio:13.2f}")
        print(f"jobs submitted by the first {2 * args.runs} hooks' deliveries: {jobs}; "
              f"requests spooled while the broker was down: {waiting}")  # fmt: skip
        print(f"bursts: most delivery processes at once: {most_up} (broker up), "
              f"{most_frozen} (broker frozen); spooled while frozen: {frozen_waiting}, "
              f"left after it resumed: {frozen_left}")  # fmt: skip


if __name__ == "__main__":
    main()
