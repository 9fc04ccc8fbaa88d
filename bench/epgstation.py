"""kamado behind EPGStation's encode button against a bare ffmpeg behind the same button.

Starts the EPGStation test server (tests/support/epgstation.py: a real EPGStation 2.7.3,
built once), a redis-server and one warm `kamado worker`, and gives EPGStation two
presets: BARE, a shell script that execs ffmpeg with kamado's own argv for the profile
(the same input, ``$OUTPUT`` as the output), and KAMADO, `kamado epgstation encode` with
that profile. One recording (a generated 1440x1080i MPEG-2 + AAC TS, uploaded once) is
encoded through each preset in turn, ``--rounds`` times in alternating order; each time
runs from POST /api/encode until the encoded file is registered in EPGStation. Prints
the medians, kamado's added seconds and the ratio against BARE.

    PYTHONPATH=. .venv/bin/python bench/epgstation.py [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.epgstation import EpgstationServer, Preset, running_epgstation
from tests.support.redis_proc import RedisProcess
from tests.support.workers import running_worker
from worker.encode.argv import build_command
from worker.encode.ffprobe import read_media
from worker.encode.sample import make_sample
from worker.profiles import Backend, get_profile
from worker.settings.model import Settings

KAMADO = str(Path(sys.executable).with_name("kamado"))


def bare_script(path: Path, source: Path, profile_name: str, settings: Settings) -> Path:
    """A preset command running ffmpeg exactly as kamado's worker would for ``source``."""
    profile = get_profile(profile_name, settings.profiles)
    placeholder = path.parent / "PLACEHOLDER.mp4"
    command = build_command(
        Backend.X264, profile, read_media("ffprobe", source), source, placeholder
    )
    words = []
    for word in [*command.argv, "-y"]:
        if word == str(source):
            words.append('"$INPUT"')
        elif word == str(placeholder):
            words.append('"$OUTPUT"')
        else:
            words.append(shlex.quote(word))
    path.write_text("#!/bin/sh\nexec " + " ".join(words) + " </dev/null >/dev/null 2>&1\n")
    path.chmod(0o755)
    return path


def timed_encode(server: EpgstationServer, recorded_id: int, video_id: int, mode: str) -> float:
    """Seconds from POST /api/encode until EPGStation lists the new encoded file."""
    before = {f["id"] for f in server.video_files(recorded_id)}
    started = time.perf_counter()
    encode_id = server.encode(recorded_id, video_id, mode)
    gone_at: float | None = None
    while True:
        new = [f for f in server.video_files(recorded_id) if f["id"] not in before]
        if new:
            seconds = time.perf_counter() - started
            server.request("DELETE", f"/api/videos/{new[0]['id']}")  # and its file
            return seconds
        if server.encode_state(encode_id)[0] != "gone":
            gone_at = None
        elif gone_at is None:
            gone_at = time.perf_counter()
        elif time.perf_counter() - gone_at > 5:  # ended, and no file came
            log = server.service_log("encode.log")[-2000:]
            raise SystemExit(f"{mode}: the encode ended without a file:\n{log}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-bench-epgs-") as tmp:
        root = Path(tmp)
        redis = RedisProcess(root / "redis").start()
        state = root / "state"
        config = root / "kamado.toml"
        config.write_text(
            f'broker_url = "{redis.url}"\nstate_dir = "{state}"\n'
            "[scheduler]\nmin_age = 0\nsettle_time = 0\n"
        )
        settings = Settings(state_dir=state)
        profile = settings.encode.default_profile
        source = make_sample(root / "rec.ts", seconds=args.seconds)
        bare = bare_script(root / "bare.sh", source, profile, settings)
        presets = [
            Preset("BARE", str(bare), rate=50),
            Preset("KAMADO", f"{KAMADO} epgstation encode --config {config} --profile {profile}",
                   rate=50),
        ]  # fmt: skip
        env = {"KAMADO_CONFIG": str(config)}
        try:
            with (
                running_worker(redis.url, root / "worker", **env),
                running_epgstation(root / "server", presets) as server,
            ):
                recorded_id = server.new_recorded("bench", args.seconds)
                video_id = server.upload(recorded_id, source, "bench.m2ts")
                print(
                    f"{args.seconds:g} s 1440x1080i MPEG-2, profile {profile} (x264), "
                    f"{args.rounds} rounds, one warm worker"
                )
                times: dict[str, list[float]] = {"BARE": [], "KAMADO": []}
                for n in range(args.rounds):
                    order = ["BARE", "KAMADO"] if n % 2 == 0 else ["KAMADO", "BARE"]
                    for mode in order:
                        times[mode].append(timed_encode(server, recorded_id, video_id, mode))
                    print(
                        f"round {n + 1}: bare {times['BARE'][-1]:.2f} s, "
                        f"kamado {times['KAMADO'][-1]:.2f} s"
                    )
        finally:
            redis.stop()
        bare_s, kamado_s = (statistics.median(times[m]) for m in ("BARE", "KAMADO"))
        print(f"median bare ffmpeg preset: {bare_s:.2f} s")
        print(f"median kamado preset: {kamado_s:.2f} s")
        print(f"added by kamado: {kamado_s - bare_s:+.2f} s, ratio {kamado_s / bare_s:.3f}")
        print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
