"""`kamado hook epgstation` wall time: p50 and p95 with the broker up and down (spool).

Each run is a real process with EPGStation's environment (its variables plus PATH) and
a config file naming a private redis-server. The hook validates its input, spools it and
starts a detached delivery; the bench waits for that delivery to end between runs (not
timed: a recorder starts hooks minutes apart, and the delivery is not the hook's wait).
Cases:

- ``broker up``: no scheduler service; each hook starts a delivery that submits the job.
- ``service running``: a scheduler service holds the spool and delivers.
- ``broker down``: the broker is killed; the first hook's delivery retries it, the
  others leave their entries to that delivery.
- ``--wait, broker up``: the hook delivers in its own process (``--wait``).
- ``config changed``: the first hook after each edit of the config validates it in full.
- ``burst of N, broker up`` / ``broker frozen``: N hooks started at once (tuners that end
  in the same second), ``--rounds`` times; each hook's own wall time is one sample. With
  the broker frozen (SIGSTOP) the one delivery waits on it and every later hook leaves
  its entry to that delivery; the most delivery processes seen at once is printed.

The baseline, measured in the same run, is the same interpreter starting the root CLI
with ``--help`` (what every typer-based kamado command costs).

    PYTHONPATH=. .venv/bin/python bench/hook.py [--runs 30] [--burst 8] [--rounds 10]
        [--bursts-only]

Burst rows are compared with a burst of as many bare interpreters (``python -c pass``)
started the same way: what the hook adds over the interpreter under the same contention.
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
from worker.broker.registry import Registry
from worker.encode.sample import make_sample

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


def settle(
    until: Callable[[], bool] = lambda: True, limit: float = 30.0, *, deliveries: bool = True
) -> None:
    """Wait until ``until`` holds and (``deliveries``) no delivery runs."""
    deadline = time.monotonic() + limit
    while ((deliveries and deliveries_running()) or not until()) and time.monotonic() < deadline:
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


class HookBench:
    """One run's private broker, config and spool, and the cases measured on them."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root, self.args = root, args
        self.redis = RedisProcess(root / "redis").start()
        self.registry = Registry.connect(self.redis.url)
        self.config = root / "kamado.toml"
        self.config.write_text(f'broker_url = "{self.redis.url}"\nstate_dir = "{root / "state"}"\n')
        self.spool = root / "state" / "spool"
        self.sample = make_sample(root / "sample.ts", seconds=1)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_CACHE_HOME": str(root)}
        self.counter = iter(range(1_000_000))
        self.results: dict[str, list[float]] = {}
        self.baseline_of: dict[str, str] = {}

    def hook_env(self) -> dict[str, str]:
        """EPGStation's variables for a new copy of the sample recording."""
        n = next(self.counter)
        rec = self.root / "rec" / f"番組 {n}.ts"
        rec.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.sample, rec)
        return {**self.env, "RECORDEDID": str(n), "RECPATH": str(rec), "NAME": "番組",
                "STARTAT": "1700000000000", "ENDAT": "1700001800000", "DROP_CNT": "null",
                "ERROR_CNT": "null", "SCRAMBLING_CNT": "null", "LOGPATH": "null"}  # fmt: skip

    def spool_empty(self) -> bool:
        """True when every spooled entry was delivered."""
        return not any(self.spool.glob("*.json"))

    def hook_argv(self, *extra: str) -> list[str]:
        """The hook's command line."""
        return [*KAMADO, "hook", "epgstation", *extra, "--config", str(self.config)]

    def run_case(
        self, extra: tuple[str, ...] = (), *, edit: bool = False, deliveries: bool = True
    ) -> list[float]:
        """``--runs`` hooks one after another; each one's wall seconds."""
        out = []
        for n in range(self.args.runs):
            if edit:  # a changed config (mtime and size) must be validated again
                with self.config.open("a") as fh:
                    fh.write(f"# edit {n}\n")
            out.append(timed(self.hook_argv(*extra), self.hook_env()))
            if deliveries:
                settle(self.spool_empty)
            else:
                time.sleep(0.2)
        return out

    def run_bursts(self, *, wait: bool = True) -> tuple[list[float], int]:
        """``--rounds`` bursts of ``--burst`` hooks; their wall seconds, most deliveries seen."""
        out: list[float] = []
        most = 0
        for _ in range(self.args.rounds):
            seconds, seen = burst([(self.hook_argv(), self.hook_env())
                                   for _ in range(self.args.burst)])  # fmt: skip
            out += seconds
            most = max(most, seen)
            if wait:
                settle(self.spool_empty)
            else:  # the delivery waits on the frozen broker; the next burst comes anyway
                time.sleep(0.5)
        return out, most

    def singles(self) -> int:
        """The one-hook-at-a-time cases with the broker up; the jobs they submitted."""
        self.results["broker up (spool, delivery started)"] = self.run_case()
        submitted = len(self.registry.list())
        self.results["--wait, broker up"] = self.run_case(("--wait",))
        service = subprocess.Popen(
            [*KAMADO, "scheduler", "run", "--config", str(self.config)],
            env=self.env, cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)
        self.results["service running (spool)"] = self.run_case()
        service.terminate()
        service.wait(20)
        self.results["config changed (full validation)"] = self.run_case(edit=True)
        return submitted

    def bursts(self) -> tuple[int, int, int, int]:
        """The burst cases: most deliveries (up, frozen), spooled while frozen, left after."""
        n = self.args.burst
        bare = f"baseline: burst of {n} bare interpreters"
        self.results[bare] = []
        for _ in range(self.args.rounds):
            self.results[bare] += burst([([sys.executable, "-c", "pass"], self.env)] * n)[0]
            time.sleep(0.5)
        up, frozen = f"burst of {n}, broker up", f"burst of {n}, broker frozen"
        self.results[up], most_up = self.run_bursts()
        self.redis.pause()
        self.results[frozen], most_frozen = self.run_bursts(wait=False)
        self.baseline_of.update({bare: bare, up: bare, frozen: bare})
        waiting = len(list(self.spool.glob("*.json")))
        self.redis.resume()
        settle(self.spool_empty, limit=300)
        return most_up, most_frozen, waiting, len(list(self.spool.glob("*.json")))

    def down(self) -> int:
        """Hooks with the broker killed; the entries left spooled."""
        self.registry.close()
        self.redis.kill()
        # the one delivery retries the absent broker (scheduler.delivery_retry); later hooks
        # leave their entries to it, as a recorder's would
        self.results["broker down (spool)"] = self.run_case(deliveries=False)
        spooled = len(list(self.spool.glob("*.json")))
        settle(limit=120)  # the last delivery gives up on the absent broker
        return spooled

    def report(self, single: str) -> None:
        """Print p50 and p95 of every case and its ratio to its baseline."""
        print(f"{'case':44} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}")
        for name, values in self.results.items():
            base = statistics.median(self.results[self.baseline_of.get(name, single)])
            ratio = statistics.median(values) / base
            print(f"{name:44} {pct(values, 50):8.0f} {pct(values, 95):8.0f} {ratio:13.2f}")


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--burst", type=int, default=8, help="hooks started at once")
    parser.add_argument("--rounds", type=int, default=10, help="bursts per burst case")
    parser.add_argument("--bursts-only", action="store_true", help="only the burst cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-bench-hook-") as tmp:
        bench = HookBench(Path(tmp), args)
        single = "baseline: kamado --help"
        bench.results[single] = [timed([*KAMADO, "--help"], bench.env) for _ in range(args.runs)]
        bench.run_case()  # the first hook validates the config; warm-up runs are not counted
        jobs = 0 if args.bursts_only else bench.singles()
        most_up, most_frozen, frozen_waiting, frozen_left = bench.bursts()
        waiting = 0 if args.bursts_only else bench.down()
        if args.bursts_only:
            bench.registry.close()
            bench.redis.kill()
        bench.report(single)
        print(f"jobs submitted by the first {2 * args.runs} hooks' deliveries: {jobs}; "
              f"requests spooled while the broker was down: {waiting}")  # fmt: skip
        print(f"bursts: most delivery processes at once: {most_up} (broker up), "
              f"{most_frozen} (broker frozen); spooled while frozen: {frozen_waiting}, "
              f"left after it resumed: {frozen_left}")  # fmt: skip


if __name__ == "__main__":
    main()
