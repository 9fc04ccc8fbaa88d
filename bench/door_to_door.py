"""Door to door (issue #17): programme end → verified output in place, live against after.

A private redis-server, one real `kamado worker` (libx264) and the hooks as EPGStation
runs them: `kamado hook epgstation --start --wait` and `kamado hook epgstation --wait`,
each a fresh process with EPGStation's variables and a config file (``--wait``: the hook
delivers in its own process, so no detached delivery sits between hook and worker).

1. Warm-up, untimed: one ordinary job (finish hook only) of a short recording of the same
   shape, so the worker has a measured speed for the profile (a live job goes only to a
   worker measured at ≥ ``[live] margin`` × real time); the speed is printed.
2. Live: ffmpeg writes a broadcast-like TS (1440x1080i MPEG-2 + AAC, ``--size`` for
   another) at real time (``-re``) for ``--seconds``; the start hook runs once the file is
   open, the finish hook once the writer exits (the programme's end).
3. After the fact, the baseline: a second recording of the same bytes under a new name
   (copied from the first; ``--rewrite`` writes it at real time again), only the finish
   hook, fired as the copy (or the writer) ends.

Each figure is programme end → the job DONE in the registry (verified by the worker) with
its output file in place, hooks included. Prints both, their difference and ratio, the
worker's measured speed, the goal check (live ≤ 10 s after the end on a worker ≥ 1.5× real
time) and the load average before and after; ``--json`` adds one machine-readable line.

    PYTHONPATH=. .venv/bin/python bench/door_to_door.py [--seconds 120] [--size 1440x1080]
        [--warmup 20] [--rewrite] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.redis_proc import RedisProcess
from tests.support.workers import running_worker
from worker.broker.live import read_live
from worker.broker.presence import profile_realtime
from worker.broker.registry import Registry
from worker.encode.ffprobe import read_media
from worker.encode.sample import make_sample, sample_argv
from worker.jobs import JobState

ROOT = Path(__file__).resolve().parents[1]
KAMADO = str(Path(sys.executable).with_name("kamado"))
GOAL_AFTER_S = 10.0
GOAL_SPEED = 1.5


def realtime_argv(path: Path, seconds: float, width: int, height: int) -> list[str]:
    """The sample's ffmpeg argv, reading its inputs at real time and flushing each packet,
    as a tuner writes a recording."""
    argv = sample_argv(path, seconds=seconds, width=width, height=height)
    paced: list[str] = []
    for n, word in enumerate(argv):
        if word == "-f" and argv[n + 1] == "lavfi":
            paced.append("-re")
        if n == len(argv) - 1:
            paced += ["-flush_packets", "1"]
        paced.append(word)
    return paced


@dataclass
class Run:
    """One bench run's broker, config, worker and recorder environment."""

    root: Path
    config: Path
    registry: Registry
    hostname: str
    seconds: float

    def env(self, path: Path, recorded_id: int) -> dict[str, str]:
        """EPGStation's variables for a programme of ``seconds`` starting now."""
        start = int(time.time() * 1000)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "RECPATH": str(path),
            "RECORDEDID": str(recorded_id),
            "NAME": f"ベンチ番組 {recorded_id}",
            "CHANNELNAME": "ベンチ",
            "STARTAT": str(start),
            "ENDAT": str(start + int(self.seconds * 1000)),
            "DROP_CNT": "0",
            "ERROR_CNT": "0",
            "SCRAMBLING_CNT": "0",
        }

    def hook(self, env: dict[str, str], *extra: str) -> dict[str, Any]:
        """Run one hook as the recorder does; what it reported (``--json``), with its time."""
        argv = [KAMADO, "hook", "epgstation", *extra, "--wait", "--json",
                "--config", str(self.config)]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(argv, env=env, cwd=self.root, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[1:4])} {extra} failed: {done.stderr[-2000:]}")
        said: dict[str, Any] = json.loads(done.stdout)
        said["hook_s"] = time.monotonic() - started
        return said

    def done_at(self, job_id: str, timeout: float) -> tuple[float, Path]:
        """When the job was first seen DONE with its output in place (monotonic), and it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.registry.get(job_id)
            if record is not None and record.state is JobState.DONE:
                output = Path((record.result or {}).get("output") or record.job.output)
                if output.is_file():
                    return time.monotonic(), output
            elif record is not None and record.state in (JobState.FAILED, JobState.CANCELLED):
                raise SystemExit(f"job {job_id} {record.state.value}: {record.error}")
            time.sleep(0.05)
        raise SystemExit(f"job {job_id} not done after {timeout:.0f} s")

    def speed(self, profile: str) -> float | None:
        """The worker's measured speed (× real time) for libx264 and the profile."""
        return profile_realtime(self.registry, self.hostname, "x264", profile)


def check_output(output: Path, source: Path) -> str:
    """The output's and the source's durations, in words (the worker verified them)."""
    out, src = read_media("ffprobe", output), read_media("ffprobe", source)
    return f"output {out.duration_s:.2f} s of source {src.duration_s:.2f} s"


def warm_up(run: Run, width: int, height: int, seconds: float) -> str:
    """An ordinary job of a short recording of the same shape; the profile it ran with."""
    path = make_sample(run.root / "rec" / "warm-up.ts", seconds=seconds, width=width,
                       height=height)  # fmt: skip
    said = run.hook(run.env(path, 1))
    run.done_at(said["id"], timeout=120 + seconds * 10)
    record = run.registry.get(said["id"])
    assert record is not None
    return record.job.profile


def live(run: Run, width: int, height: int) -> dict[str, Any]:
    """A recording written at real time with both hooks; programme end → output, seconds."""
    path = run.root / "rec" / "live.ts"
    env = run.env(path, 2)
    writer = subprocess.Popen(realtime_argv(path, run.seconds, width, height),
                              stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        while not path.exists():  # EPGStation runs its start command once the file is open
            if writer.poll() is not None:
                raise SystemExit(f"the recording's writer exited ({writer.returncode})")
            time.sleep(0.01)
        started = run.hook(env, "--start")
        lags: list[float] = []
        while True:
            try:
                writer.wait(timeout=1.0)  # returns within a few ms of the writer's exit
                break
            except subprocess.TimeoutExpired:
                state = read_live(run.registry, started["id"])
                if state is not None and state.lag_s is not None:
                    lags.append(state.lag_s)
        ended = time.monotonic()
        if writer.returncode != 0:
            raise SystemExit(f"the recording's writer failed ({writer.returncode})")
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(10)
    finished = run.hook(env)
    at, output = run.done_at(started["id"], timeout=120 + run.seconds * 10)
    return {"after_s": at - ended, "start": started, "finish": finished, "lags": lags,
            "path": path, "output": output}  # fmt: skip


def after_the_fact(
    run: Run, source: Path, width: int, height: int, rewrite: bool
) -> dict[str, Any]:
    """The same recording as a new job, only the finish hook; programme end → output."""
    path = run.root / "rec" / "after.ts"
    if rewrite:
        subprocess.run(realtime_argv(path, run.seconds, width, height),
                       stdin=subprocess.DEVNULL, check=True)  # fmt: skip
    else:
        shutil.copyfile(source, path)
    ended = time.monotonic()
    finished = run.hook(run.env(path, 3))
    at, output = run.done_at(finished["id"], timeout=120 + run.seconds * 10)
    return {"after_s": at - ended, "finish": finished, "path": path, "output": output}


def write_config(root: Path, broker_url: str) -> Path:
    """The config file both the hooks and the worker read."""
    out = root / "out"
    out.mkdir()
    config = root / "kamado.toml"
    config.write_text(
        f'broker_url = "{broker_url}"\nstate_dir = "{root / "state"}"\n\n'
        f'[encode]\noutput_dir = "{out}"\n'
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", default="1440x1080", help="the recording's WIDTHxHEIGHT")
    parser.add_argument("--warmup", type=float, default=20.0, help="the warm-up's seconds")
    parser.add_argument("--rewrite", action="store_true",
                        help="write the after-the-fact recording at real time too")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kamado-door-") as tmp:
        root = Path(tmp)
        redis = RedisProcess(root / "redis").start()
        registry = Registry.connect(redis.url)
        try:
            config = write_config(root, redis.url)
            with running_worker(redis.url, root / "state", KAMADO_CONFIG=str(config)) as (
                _app, hostname, _daemon,
            ):  # fmt: skip
                run = Run(root, config, registry, hostname, args.seconds)
                report(run, args, width, height, load_before)
        finally:
            registry.close()
            redis.stop()


def report(
    run: Run, args: argparse.Namespace, width: int, height: int, load: tuple[float, ...]
) -> None:
    """Run the three stages and print the figures."""
    profile = warm_up(run, width, height, min(args.warmup, args.seconds))
    speed = run.speed(profile)
    print(f"{args.seconds:g} s {width}x{height}i MPEG-2 + AAC at real time, profile {profile}; "
          f"worker's measured speed after the warm-up: {speed}× real time")  # fmt: skip
    on = live(run, width, height)
    lags = on["lags"]
    lag = f"max {max(lags):.1f} s, last {lags[-1]:.1f} s" if lags else "none reported"
    print(
        f"start hook: {on['start']['action']} ({on['start']['detail']}), "
        f"{on['start']['hook_s']:.2f} s; lag behind the recording while it ran: {lag}"
    )
    print(f"finish hook: {on['finish']['action']} ({on['finish']['detail']}), "
          f"{on['finish']['hook_s']:.2f} s")  # fmt: skip
    print(
        f"live: verified output in place {on['after_s']:.2f} s after the programme ended; "
        + check_output(on["output"], on["path"])
    )
    speed_live = run.speed(profile)
    print(f"worker's measured speed after the live job: {speed_live}× real time")
    how = "written at real time again" if args.rewrite else "a copy of the live recording"
    off = after_the_fact(run, on["path"], width, height, args.rewrite)
    print(f"after the fact ({how}): finish hook {off['finish']['action']}, "
          f"{off['finish']['hook_s']:.2f} s; verified output in place {off['after_s']:.2f} s "
          f"after the programme ended; " + check_output(off["output"], off["path"]))  # fmt: skip
    ratio = on["after_s"] / off["after_s"]
    print(f"live − after the fact: {on['after_s'] - off['after_s']:+.2f} s; "
          f"live ÷ after the fact: {ratio:.3f}")  # fmt: skip
    speed_end = run.speed(profile)
    met = on["after_s"] <= GOAL_AFTER_S and (speed or 0) >= GOAL_SPEED
    print(
        f"goal: live ≤ {GOAL_AFTER_S:g} s after the end on a worker ≥ {GOAL_SPEED:g}× real "
        f"time: {'met' if met else 'NOT met'} (live {on['after_s']:.2f} s, speed {speed})"
    )
    print(f"worker's measured speed at the end: {speed_end}× real time")
    load_after = os.getloadavg()
    print(f"load average before {load}, after {load_after}")
    if args.json:
        print(json.dumps({
            "seconds": args.seconds, "size": f"{width}x{height}", "profile": profile,
            "speed": speed, "speed_after_live": speed_live, "speed_end": speed_end,
            "start": on["start"]["action"], "live_s": round(on["after_s"], 3),
            "after_s": round(off["after_s"], 3), "ratio": round(ratio, 3), "goal_met": met,
            "lag_max_s": max(lags, default=None), "copy": not args.rewrite,
            "load_before": load, "load_after": load_after,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
