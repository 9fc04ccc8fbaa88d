"""Parsing ffmpeg's ``-progress`` key=value blocks into frame, fps, percent, speed and ETA."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from worker.jobs import JobState

__all__ = ["Progress", "ProgressParser"]


class Progress(BaseModel):
    """One progress report of a running job."""

    model_config = ConfigDict(frozen=True)

    state: JobState = JobState.ENCODING
    percent: float = Field(default=0.0, ge=0, le=100)
    frame: int = 0
    fps: float | None = None
    speed: float | None = None
    out_time_s: float = 0.0
    eta_s: float | None = None
    backend: str | None = None
    done: bool = False


def _number(value: str | None) -> float | None:
    """A float from an ffmpeg value: strips padding and the x of speed; N/A is missing."""
    if value is None:
        return None
    text = value.strip().removesuffix("x").strip()
    if not text or text == "N/A":
        return None
    try:
        return float(text)
    except ValueError:
        return None


class ProgressParser:
    """Feed it ffmpeg's stdout lines; it returns a Progress at the end of each block."""

    def __init__(self, duration_s: float | None, backend: str | None = None) -> None:
        self.duration_s = duration_s if duration_s and duration_s > 0 else None
        self.backend = backend
        self._block: dict[str, str] = {}
        self.last: Progress | None = None

    def feed(self, line: str) -> Progress | None:
        """Take one line; return a report when the line closes a block."""
        key, sep, value = line.partition("=")
        if not sep:
            return None
        key = key.strip()
        if key != "progress":
            self._block[key] = value
            return None
        report = self._report(done=value.strip() == "end")
        self._block = {}
        self.last = report
        return report

    def _report(self, *, done: bool) -> Progress:
        block = self._block
        # out_time_ms is in microseconds too (an ffmpeg quirk); prefer out_time_us.
        micros = _number(block.get("out_time_us")) or _number(block.get("out_time_ms")) or 0.0
        out_time = max(micros, 0.0) / 1e6
        speed = _number(block.get("speed"))
        percent = 0.0
        eta = None
        if self.duration_s:
            percent = min(max(out_time / self.duration_s * 100.0, 0.0), 100.0)
            if speed and speed > 0:
                eta = max(self.duration_s - out_time, 0.0) / speed
        if done:
            percent, eta = 100.0, 0.0
        frame = _number(block.get("frame"))
        return Progress(
            percent=round(percent, 2),
            frame=int(frame or 0),
            fps=_number(block.get("fps")),
            speed=speed,
            out_time_s=round(out_time, 3),
            eta_s=None if eta is None else round(eta, 1),
            backend=self.backend,
            done=done,
        )
