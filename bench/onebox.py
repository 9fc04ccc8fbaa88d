"""One box against bare ffmpeg: cold `kamado encode` with 1 and 2 slots (issue #18's recipe).

Generates four 20 s 1440x1080i MPEG-2 + AAC recordings, then alternates, each round in a
rotated order: (a) bare ffmpeg running kamado's own argv for the four files one after
another, (b) the same two at a time, (c) `kamado encode` of the four with one slot and
(d) with two (`--jobs 2`), each a fresh CLI process on the embedded broker (cold: it
starts the broker and a worker and stops them). The probe cache is filled once before
timing, as on any machine that ran kamado before; the first call's time is printed too.
Prints the medians and the ratios against (a).

    PYTHONPATH=. .venv/bin/python bench/onebox.py [--rounds 3] [--seconds 20] [--files 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from worker.backends.proof_reuse import last_start
from worker.encode.argv import build_command
from worker.encode.ffprobe import read_media
from worker.encode.sample import make_sample
from worker.profiles import Backend, get_profile
from worker.settings.model import Settings


def bare(argvs: list[list[str]], at_once: int) -> float:
    """Run the argvs, ``at_once`` at a time; the wall time."""
    started = time.perf_counter()
    pending = list(argvs)
    running: list[subprocess.Popen[bytes]] = []
    while pending or running:
        while pending and len(running) < at_once:
            running.append(
                subprocess.Popen(
                    pending.pop(0), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        running[0].wait()
        if running[0].returncode != 0:
            raise SystemExit(f"bare ffmpeg failed: {running[0].args!r}")
        running.pop(0)
    return time.perf_counter() - started


def kamado(files: list[Path], out: Path, env: dict[str, str], slots: int) -> tuple[float, str]:
    """One cold `kamado encode` of the files; its wall time and whether it reused the probe."""
    argv = [sys.executable, "-m", "worker.cli.main", "encode", *map(str, files),
            "-o", str(out), "--force", "--jobs", str(slots), "--json"]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    rows = json.loads(result.stdout or "[]")
    if result.returncode != 0 or not all(r["state"] == "done" for r in rows):
        raise SystemExit(f"kamado encode failed ({result.returncode}): {result.stderr[-2000:]}")
    for path in out.iterdir():
        path.unlink()
    last = last_start(Settings(state_dir=Path(env["KAMADO_STATE_DIR"])))
    return seconds, "unknown" if last is None else f"reused={last[0]} ({last[1]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-onebox-") as tmp:
        root = Path(tmp)
        (root / "rec").mkdir()
        out = root / "out"
        out.mkdir()
        bare_dir = root / "bare"
        bare_dir.mkdir()
        settings = Settings(state_dir=root / "state")
        profile = get_profile(settings.encode.default_profile, settings.profiles)
        files = [
            make_sample(root / "rec" / f"rec-{n}.ts", seconds=args.seconds)
            for n in range(args.files)
        ]
        argvs = []
        for f in files:
            command = build_command(
                Backend.X264, profile, read_media("ffprobe", f), f, bare_dir / f"{f.stem}.mp4"
            )
            argvs.append([*command.argv, "-y"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
        env |= {"HOME": str(root), "KAMADO_STATE_DIR": str(settings.state_dir)}
        first, said = kamado(files, out, env, 1)
        print(
            f"{args.files} x {args.seconds:g} s 1440x1080i MPEG-2, profile "
            f"{settings.encode.default_profile}, "
            f"{args.rounds} rounds; first call (fills the probe cache): {first:.2f} s"
        )
        modes: dict[str, Callable[[], float]] = {
            "bare sequential": lambda: bare(argvs, 1),
            "bare two at a time": lambda: bare(argvs, 2),
            "kamado encode, 1 slot": lambda: kamado(files, out, env, 1)[0],
            "kamado encode, 2 slots": lambda: kamado(files, out, env, 2)[0],
        }
        times: dict[str, list[float]] = {name: [] for name in modes}
        names = list(modes)
        for n in range(args.rounds):
            order = names[n % len(names) :] + names[: n % len(names)]
            for name in order:
                times[name].append(modes[name]())
            print(f"round {n + 1}: " + ", ".join(f"{k} {times[k][-1]:.2f} s" for k in names))
        medians = {k: statistics.median(v) for k, v in times.items()}
        base = medians["bare sequential"]
        for name in names:
            print(f"median {name}: {medians[name]:.2f} s, ratio {medians[name] / base:.3f}")
        two = medians["bare two at a time"] / base
        one_slot = medians["kamado encode, 1 slot"] / base
        two_slots = medians["kamado encode, 2 slots"] / base
        print(
            f"goals: 1 slot <= 1.05 (got {one_slot:.3f}); "
            f"2 slots <= {two + 0.05:.3f} (got {two_slots:.3f})"
        )
        print(f"probe at the first call: {said}; at the last: {kamado(files, out, env, 1)[1]}")
        print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
