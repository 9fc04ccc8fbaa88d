"""Per-job cost of the output contract: the submitter's check and claim, the worker's
check and claim, and the mark that kamado wrote the file, on the embedded broker.

Each round creates a fresh recording and runs exactly what one job pays: Job.create,
``check_submission``, ``check_task`` and ``Claims.mark_written``. Prints the median and
the 95th percentile per job, in milliseconds.

    .venv/bin/python bench/contract.py [--jobs 500] [--taken 0]

``--taken N`` plants N files under the output's first names, so each claim walks N
candidates (the ``news (2).mp4`` rule) before it finds a free one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from worker.broker.claims import Claims
from worker.broker.embedded import EmbeddedBroker
from worker.broker.registry import Registry
from worker.encode.output_contract import check_submission, check_task
from worker.jobs import Job
from worker.outputs.identity import local_fingerprint, real_path
from worker.outputs.names import numbered
from worker.settings.model import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--taken", type=int, default=0, help="files already at the names")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kamado-bench-") as tmp:
        root = Path(tmp)
        rec, out = root / "rec", root / "out"
        rec.mkdir()
        out.mkdir()
        settings = Settings(state_dir=root / "state", encode={"output_dir": str(out)})
        with EmbeddedBroker(settings.state_dir) as broker:
            registry = Registry.connect(broker.url)
            claims = Claims(registry)
            costs: list[float] = []
            for n in range(args.jobs):
                source = rec / f"番組 {n}.ts"
                source.write_bytes(b"G" * 188)
                first = Job.create(str(source), "h264-x264", output_dir=out).output
                for k in range(1, args.taken + 1):
                    Path(numbered(first, k)).write_bytes(b"mine")
                started = time.perf_counter()
                job = Job.create(str(source), "h264-x264", output_dir=out)
                job = check_submission(settings, claims, job)
                job, _replace = check_task(settings, claims, job)
                checked = time.perf_counter()
                Path(job.output).write_bytes(b"encoded")  # the commit itself is not timed
                mark = time.perf_counter()
                claims.mark_written(real_path(job.output), local_fingerprint(job.output) or "")
                costs.append((checked - started) + (time.perf_counter() - mark))
            registry.close()
    ms = sorted(c * 1000 for c in costs)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{args.jobs} jobs, {args.taken} names taken before each: "
          f"median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms per job")  # fmt: skip


if __name__ == "__main__":
    main()
