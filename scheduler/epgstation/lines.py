"""The progress lines an EPGStation encode preset prints: one JSON object per stdout line.

EPGStation parses each stdout chunk line by line with ``JSON.parse`` (EncoderModel.ts);
any other text spoils the chunk, so only these lines go to stdout, each in one write.
On cancel EPGStation destroys the pipe first: a write that fails closes the channel
quietly and the command goes on with its cancel.
"""

from __future__ import annotations

import json
import os

from worker.jobs import JobState
from worker.progress import Progress


class ProgressLines:
    """Writes ``{"type":"progress","percent":0..1,"log":"…"}`` lines to a file descriptor."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self.open = True
        self.last: tuple[float, str] | None = None

    def send(self, percent: float, log: str) -> bool:
        """Write one line unless it repeats the last; False once the reader is gone."""
        if not self.open:
            return False
        value = round(min(max(percent, 0.0), 1.0), 4)
        if self.last == (value, log):
            return True
        self.last = (value, log)
        line = json.dumps({"type": "progress", "percent": value, "log": log}, ensure_ascii=False)
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError:  # EPIPE: EPGStation closed stdout (a cancel, or its own end)
            self.open = False
        return self.open


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(state: JobState, progress: Progress | None, waiting: str = "") -> tuple[float, str]:
    """(percent 0..1, log text) for a job's state and its latest progress."""
    if state is JobState.QUEUED:
        return 0.0, "kamado: queued" + (f" ({waiting})" if waiting else "")
    if state is JobState.HELD:
        return 0.0, "kamado: held (kamado retry starts it)"
    if progress is None or state is JobState.STAGING:
        return (progress.percent / 100 if progress else 0.0), f"kamado: {state.value}"
    parts = [f"kamado: {state.value} {progress.percent:.1f}%"]
    if progress.fps is not None:
        parts.append(f"fps={progress.fps:g}")
    if progress.speed is not None:
        parts.append(f"speed={progress.speed:g}x")
    if progress.eta_s is not None:
        parts.append(f"eta={_clock(progress.eta_s)}")
    if progress.backend:
        parts.append(f"backend={progress.backend}")
    return progress.percent / 100, " ".join(parts)
