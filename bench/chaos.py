"""Chaos: recordings through two workers and the scheduler while real faults happen.

Builds a recorder (sshd), a broker (redis-server), a scheduler (`kamado scheduler run`)
and two `kamado worker` processes as network namespaces (tests/support/chaos.py), runs
COUNT short recordings through them once without faults (the baseline) and once while a
seeded loop, bounded in time, does at random intervals: kill -9 of a worker or its pool
child mid-encode, redis-server killed and restarted, Redis frozen longer than the lease,
a worker's SFTP link cut, a worker's scratch disk filled. Short settings so it ends in
minutes: lease TTL 4 s, reconcile every 1 s, io_timeout 3 s, 5 attempts, watchdog 10 s.

Prints jobs done, lost (neither done nor failed with a reason), duplicate outputs,
sources changed, outputs failing verification, and throughput under chaos ÷ throughput
of the same run without chaos. Goal: 0 / 0 / 0 / 0 and >= 0.8. Needs root (namespaces,
tmpfs), OpenSSH's sshd, redis-server and ffmpeg.

    .venv/bin/python bench/chaos.py [--count 200] [--seed 1] [--chaos-seconds 600]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.chaos import Figures, chdir_repo, run_once
from tests.support.netns import netns_problem
from worker.encode.sample import make_sample


def show(label: str, figures: Figures) -> None:
    faults = ", ".join(f"{k} {v}" for k, v in sorted(figures.faults.items())) or "none"
    print(
        f"{label}: {figures.jobs} jobs in {figures.seconds:.1f} s "
        f"({figures.throughput:.1f} jobs/min); done {figures.done}, failed with a reason "
        f"{figures.failed}, lost {figures.lost}, duplicate outputs {figures.duplicates}, "
        f"sources changed {figures.sources_changed}, outputs failing verification "
        f"{figures.bad_outputs}, temp files left {figures.leftovers}; faults: {faults}"
    )
    if figures.timeline:
        print("    faults at: " + ", ".join(f"{at:.0f} s {kind}" for at, kind in figures.timeline))
    if figures.watchdog:
        print(f"    watchdog actions: {figures.watchdog}")
    for line in figures.failures[:20]:
        print(f"    {line}")
    for exit_ in figures.exits:
        print("    " + exit_.replace("\n", "\n      "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--chaos-seconds",
        type=float,
        default=600.0,
        help="the fault loop stops after this long (or when all are final)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(3.0, 9.0),
        metavar=("MIN", "MAX"),
        help="seconds between faults",
    )
    parser.add_argument("--clip-seconds", type=float, default=2.0)
    parser.add_argument(
        "--keep", type=Path, default=None, help="run in this (new) directory and keep its logs"
    )
    args = parser.parse_args()  # fmt: skip
    why = netns_problem()
    if why:
        print(f"chaos needs network namespaces: {why}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kamado-chaos-")))
        else:
            args.keep.mkdir(parents=True)
            root = args.keep.resolve()
        stack.enter_context(chdir_repo())
        clip = make_sample(root / "clip.ts", seconds=args.clip_seconds)
        settle = max(600.0, args.count * 6.0)
        calm = run_once(root / "calm", clip, args.count, seed=None, chaos_seconds=0,
                        gap=args.gap, settle=settle)  # fmt: skip
        show("without chaos", calm)
        wild = run_once(root / "chaos", clip, args.count, seed=args.seed,
                        chaos_seconds=args.chaos_seconds, gap=args.gap, settle=settle)  # fmt: skip
        show(f"with chaos (seed {args.seed})", wild)
    ratio = wild.throughput / calm.throughput if calm.throughput else 0.0
    print(
        f"done {wild.done}/{wild.jobs}, lost {wild.lost}, duplicate outputs {wild.duplicates}, "
        f"sources changed {wild.sources_changed}, outputs failing verification "
        f"{wild.bad_outputs}; throughput under chaos / without = {ratio:.2f} "
        "(goal 0/0/0/0 and >= 0.80)"
    )
    clean = not (wild.lost or wild.duplicates or wild.sources_changed or wild.bad_outputs)
    return 0 if clean and ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
