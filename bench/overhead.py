"""Overhead of a kamado job over bare ffmpeg for the same clip and the same argv.

Runs a generated 1080i MPEG-2 clip through (a) the exact ffmpeg argv the profile builds,
run bare, and (b) a kamado job: submit to the embedded broker → real Celery worker →
probe, encode, verify, rename → result read back. Alternates the two, several rounds,
and prints the median of each and ``overhead ratio = kamado / bare``.

    .venv/bin/python bench/overhead.py [--seconds 30] [--rounds 5] [--profile h264-x264]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from worker import onebox
from worker.ffmpeg import build_command
from worker.jobs import Job
from worker.probe import probe_source
from worker.profiles import Backend, get_profile
from worker.sample import make_sample
from worker.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="h264-x264")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kamado-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(state_dir=root / "state", worker={"backends": ["x264"]})
        source = make_sample(root / "clip-1080i.ts", seconds=args.seconds)
        profile = get_profile(args.profile, settings.profiles)
        info = probe_source("ffprobe", source)
        bare_out = root / "bare.mp4"
        argv = build_command(Backend.X264, profile, info, source, bare_out).argv
        bare: list[float] = []
        kamado: list[float] = []
        print(
            f"clip: {args.seconds:g} s 1440x1080i MPEG-2, profile {args.profile}, "
            f"{args.rounds} rounds"
        )
        with onebox.session(settings, force_embedded=True) as box:
            for n in range(args.rounds):
                started = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                bare.append(time.perf_counter() - started)
                bare_out.unlink()

                job = Job.create(str(source), args.profile, output_dir=root)
                started = time.perf_counter()
                (outcome,) = onebox.encode_files(box, [job], lambda _i: None, force=True)
                kamado.append(time.perf_counter() - started)
                if not outcome.ok:
                    raise SystemExit(f"kamado job failed: {outcome.error}")
                Path(job.output).unlink()
                print(f"round {n + 1}: bare {bare[-1]:.2f} s, kamado {kamado[-1]:.2f} s")
        b, k = statistics.median(bare), statistics.median(kamado)
        print(f"median bare ffmpeg: {b:.2f} s")
        print(f"median kamado job (submit to verified output): {k:.2f} s")
        print(f"overhead ratio = kamado / bare = {k / b:.3f}  (target <= 1.03)")


if __name__ == "__main__":
    main()
