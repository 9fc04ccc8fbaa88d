"""Running one ffmpeg encode: progress while it runs, stall and cancel watchdog, kill on exit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from worker import process
from worker.encode import stderr as ffmpeg_stderr
from worker.encode.argv import Command
from worker.errors import EncodeError, EncodeErrorKind
from worker.progress import Progress, ProgressParser


def run_encode(
    command: Command,
    *,
    source: Path,
    duration_s: float | None,
    on_progress: Callable[[Progress], None],
    check_cancel: Callable[[], None],
    progress_interval: float = 1.0,
    stall_timeout: float = 300.0,
) -> Progress:
    """Run ffmpeg to the end and return its last progress; raise EncodeError on failure.

    ``check_cancel`` is called about every ``progress_interval`` seconds and raises to stop
    the encode (JobCancelled); so does the stall watchdog when ``out_time`` has not moved
    for ``stall_timeout`` seconds. Leaving early by any exception, including Celery's
    SoftTimeLimitExceeded, kills ffmpeg's whole process group.
    """
    parser = ProgressParser(duration_s, backend=command.backend.value)
    backend = command.backend.value
    last_sent = 0.0
    last_advance = time.monotonic()
    last_out_time = -1.0

    def watchdog() -> None:
        check_cancel()
        if time.monotonic() - last_advance > stall_timeout:
            raise EncodeError(
                f"{source}: ffmpeg ({backend}) stalled: no progress for {stall_timeout:g} s",
                path=source,
                backend=backend,
                kind=EncodeErrorKind.STALLED,
            )

    with process.Supervised(command.argv, env=command.env) as child:
        for line in child.lines(poll=min(progress_interval, 1.0), on_idle=watchdog):
            report = parser.feed(line)
            if report is None:
                continue
            if report.out_time_s > last_out_time:
                last_out_time = report.out_time_s
                last_advance = time.monotonic()
            if report.done or time.monotonic() - last_sent >= progress_interval:
                last_sent = time.monotonic()
                on_progress(report)
        code = child.wait()
        tail = child.stderr_tail
    final = parser.last
    if code != 0 or final is None or not final.done:
        kind = ffmpeg_stderr.classify(tail, code)
        raise EncodeError(
            f"{source}: ffmpeg ({backend}) failed, {ffmpeg_stderr.describe(code)}: "
            f"{ffmpeg_stderr.reason(tail)}",
            path=source,
            backend=backend,
            returncode=code,
            stderr_tail=tail,
            kind=kind,
        )
    return final
