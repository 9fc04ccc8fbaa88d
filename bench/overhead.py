"""Overhead of a kamado job over bare ffmpeg for the same clip and the same argv.

Runs a generated 1080i MPEG-2 clip through (a) the exact ffmpeg argv the profile builds,
run bare, and (b) a kamado job: submit to the embedded broker → real Celery worker →
probe, encode, verify, rename → result read back. Alternates the two, several rounds,
and prints the median of each and ``overhead ratio = kamado / bare``.

    .venv/bin/python bench/overhead.py [--seconds 30] [--rounds 5] [--profile h264-x264]
        [--spans]

With ``--spans`` every process of the run records its steps (worker/spans.py) and the
bench prints the median seconds of each step and of the gaps between them: where the
fixed cost per job goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from worker import onebox, spans
from worker.encode.argv import build_command
from worker.encode.ffprobe import read_media
from worker.encode.sample import make_sample
from worker.jobs import Job
from worker.profiles import Backend, get_profile
from worker.settings.model import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="h264-x264")
    parser.add_argument("--spans", action="store_true", help="print the per-step seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kamado-bench-") as tmp:
        root = Path(tmp)
        spans_file = root / "spans.jsonl"
        if args.spans:
            os.environ[spans.ENV] = str(spans_file)  # inherited by the worker it starts
        settings = Settings(state_dir=root / "state", worker={"backends": ["x264"]})
        source = make_sample(root / "clip-1080i.ts", seconds=args.seconds)
        profile = get_profile(args.profile, settings.profiles)
        info = read_media("ffprobe", source)
        bare_out = root / "bare.mp4"
        argv = build_command(Backend.X264, profile, info, source, bare_out).argv
        bare: list[float] = []
        kamado: list[float] = []
        windows: list[tuple[str, float, float]] = []
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
                wall = time.time()
                started = time.perf_counter()
                (outcome,) = onebox.encode_files(box, [job], lambda _i: None, force=True)
                kamado.append(time.perf_counter() - started)
                windows.append((job.id, wall, wall + kamado[-1]))
                if not outcome.ok:
                    raise SystemExit(f"kamado job failed: {outcome.error}")
                Path(job.output).unlink()
                print(f"round {n + 1}: bare {bare[-1]:.2f} s, kamado {kamado[-1]:.2f} s")
        b, k = statistics.median(bare), statistics.median(kamado)
        print(f"median bare ffmpeg: {b:.2f} s")
        print(f"median kamado job (submit to verified output): {k:.2f} s")
        print(f"overhead ratio = kamado / bare = {k / b:.3f}  (target <= 1.03)")
        if args.spans:
            print_spans(spans_file, windows, b)


def print_spans(path: Path, windows: list[tuple[str, float, float]], bare: float) -> None:
    """Median seconds per step over the rounds, and the gaps between the steps."""
    per_step: dict[str, list[float]] = {}
    gaps: dict[str, list[float]] = {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for n, (job_id, begin, end) in enumerate(windows):
        # Steps that began in the round (the worker's announce may end after the client);
        # every round encodes the same clip, so the job id repeats.
        until = windows[n + 1][1] if n + 1 < len(windows) else float("inf")
        mine = {r["step"]: r for r in records if r["job"] == job_id and begin <= r["start"] < until}
        for step, r in mine.items():
            per_step.setdefault(step, []).append(float(r["seconds"]))

        def at(step: str, mine: dict[str, Any] = mine, *, finish: bool = False) -> float | None:
            r = mine.get(step)
            return None if r is None else float(r["start"]) + (float(r["seconds"]) if finish else 0)

        points = {
            "client start -> submit.check": (begin, at("submit.check")),
            "submit.publish end -> task.started (delivery)": (
                at("submit.publish", finish=True),
                at("task.started"),
            ),
            "task.finish end -> client.seen_final (result wait)": (
                at("task.finish", finish=True),
                at("client.seen_final"),
            ),
            "client.seen_final -> client end": (at("client.seen_final"), end),
        }
        for name, (a, z) in points.items():
            if a is not None and z is not None:
                gaps.setdefault(name, []).append(z - a)
        ffmpeg = mine.get("encode.ffmpeg")
        if ffmpeg is not None:
            gaps.setdefault("kamado total - encode.ffmpeg (fixed cost)", []).append(
                (end - begin) - float(ffmpeg["seconds"])
            )
    print("per step, median seconds over the rounds:")
    for step, values in sorted(per_step.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {step:<48} {statistics.median(values):8.4f}")
    for name, values in gaps.items():
        print(f"  {name:<48} {statistics.median(values):8.4f}")
    print(f"  {'(bare ffmpeg, for comparison)':<48} {bare:8.4f}")


if __name__ == "__main__":
    main()
