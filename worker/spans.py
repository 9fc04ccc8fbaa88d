"""Per-step timing of a job (spans), for finding where kamado's fixed cost per job goes.

Each step of a job (submission, the worker's contract check, the lease, the source probe,
the encode, the verification, the commit, ...) is timed with :func:`span`. A span is
logged on the ``kamado.spans`` logger at DEBUG level, and, when the environment variable
``KAMADO_SPANS`` names a file, also appended to it as one JSON line
``{"job": ..., "step": ..., "start": <epoch s>, "seconds": ...}``, so several processes
(the submitting CLI, the worker and its pool children) can write to one file and a
benchmark can line their steps up by wall-clock time (``bench/overhead.py --spans``).
Recording costs a few microseconds; with neither DEBUG logging nor the variable it is a
clock read and a dictionary lookup.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("kamado.spans")
ENV = "KAMADO_SPANS"
_lock = threading.Lock()


def record(job: str, step: str, start: float, seconds: float) -> None:
    """Record one finished step of ``job`` that began at ``start`` (epoch seconds)."""
    log.debug("job %s: %s took %.4f s", job, step, seconds)
    target = os.environ.get(ENV)
    if not target:
        return
    line = json.dumps({"job": job, "step": step, "start": start, "seconds": round(seconds, 6)})
    # One short write per line: appends from several processes interleave whole lines.
    with _lock, contextlib.suppress(OSError), Path(target).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


@contextlib.contextmanager
def span(job: str, step: str) -> Iterator[None]:
    """Time the block as step ``step`` of ``job`` (recorded also when it raises)."""
    wall = time.time()
    started = time.perf_counter()
    try:
        yield
    finally:
        record(job, step, wall, time.perf_counter() - started)


def mark(job: str, step: str) -> None:
    """Record an instant (a zero-length span), e.g. the moment a result was seen."""
    record(job, step, time.time(), 0.0)
