"""What reading an AAC stream's frames costs before an encode (``channels = "source"`` or
``dual_mono = "split"``), against ffmpeg copying the same stream to nowhere, same run.

Makes a broadcast-like TS (1440x1080i MPEG-2 at ISDB-T's ~15 Mbit/s, one AAC stream) and
times, alternating, ``repeats`` times each:

- baseline: ``ffmpeg -i SRC -map 0:1 -c copy -f null -``, the demux alone;
- kamado: ``worker.encode.aac_scan.scan_stream``, the same demux piped into the ADTS reader.

Prints the medians, kamado / baseline, and the scan's cost per hour of recording.

    PYTHONPATH=. .venv/bin/python bench/audio_scan.py [--seconds 30] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from worker.encode.aac_scan import scan_stream
from worker.encode.sample import sample_argv


def make_source(path: Path, seconds: float) -> Path:
    argv = sample_argv(path, seconds=seconds)
    argv[argv.index("6M")] = "15M"
    argv[argv.index("8M")] = "17M"
    subprocess.run(argv, check=True, timeout=60 + seconds * 30)
    return path


def baseline(source: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source),
         "-map", "0:1", "-c", "copy", "-f", "null", "-"],
        check=True, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - started


def kamado(source: Path) -> float:
    started = time.perf_counter()
    layouts = scan_stream("ffmpeg", source, 1, timeout=600)
    assert layouts.frames > 0 and layouts.channels == {2}
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = make_source(Path(scratch) / "rec.ts", args.seconds)
        size_mb = source.stat().st_size / 1e6
        base, mine = [], []
        for _ in range(args.repeats):
            base.append(baseline(source))
            mine.append(kamado(source))
    b, k = statistics.median(base), statistics.median(mine)
    print(f"source: {args.seconds:g} s, {size_mb:.1f} MB")
    print(f"baseline (ffmpeg copy to null): median {b:.3f} s  ({size_mb / b:.0f} MB/s)")
    print(f"kamado scan_stream:             median {k:.3f} s  ({size_mb / k:.0f} MB/s)")
    print(f"kamado / baseline: {k / b:.2f}")
    print(f"scan per hour of recording: {k * 3600 / args.seconds:.0f} s")


if __name__ == "__main__":
    main()
