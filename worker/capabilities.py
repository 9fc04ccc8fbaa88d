"""Which backends work on this machine, proven by a real short encode through each one.

"Compiled into ffmpeg" and "the hardware works" are different questions: a backend is
*absent* when ffmpeg lacks its encoder, *failed* when a real encode through the same argv
the profiles build fails (with the classified reason), and *proven* when it produced a
verified file.
"""

from __future__ import annotations

import json
import tempfile
import time
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from worker import ffmpeg_errors, process
from worker.errors import KamadoError
from worker.ffmpeg import build_command
from worker.probe import probe_source
from worker.profiles import BUILTIN_PROFILES, Backend
from worker.sample import make_sample
from worker.settings import Settings

ENCODERS = {Backend.QSV: "h264_qsv", Backend.VAAPI: "h264_vaapi", Backend.X264: "libx264"}
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 120.0


class Status(StrEnum):
    """The outcome of proving one backend."""

    PROVEN = "proven"
    FAILED = "failed"
    ABSENT = "absent"


class BackendReport(BaseModel):
    """One backend's probe result."""

    model_config = ConfigDict(frozen=True)

    status: Status
    reason: str = ""
    kind: str = ""
    fps: float | None = None


class ProbeReport(BaseModel):
    """Every backend's probe result on this machine."""

    model_config = ConfigDict(frozen=True)

    backends: dict[Backend, BackendReport]
    probed_at: float

    @property
    def proven(self) -> list[Backend]:
        """Backends that encoded for real, in the order qsv, vaapi, x264."""
        return [b for b in Backend if self.backends.get(b, _ABSENT).status is Status.PROVEN]


_ABSENT = BackendReport(status=Status.ABSENT)


def compiled_encoders(ffmpeg: str) -> set[str]:
    """The encoder names this ffmpeg build has."""
    result = process.run([ffmpeg, "-hide_banner", "-encoders"], timeout=30)
    names = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6:
            names.add(parts[1])
    return names


def prove(backend: Backend, settings: Settings, sample: Path, workdir: Path) -> BackendReport:
    """Encode the sample with one backend through the profiles' own argv."""
    profile = BUILTIN_PROFILES["h264-auto"]
    info = probe_source(settings.encode.ffprobe, sample)
    output = workdir / f"probe-{backend.value}.mp4"
    command = build_command(
        backend, profile, info, sample, output,
        ffmpeg=settings.encode.ffmpeg,
        render_node=settings.encode.render_node,
        vaapi_driver=settings.encode.vaapi_driver,
    )  # fmt: skip
    started = time.monotonic()
    try:
        result = process.run(command.argv, timeout=PROBE_TIMEOUT, env=command.env)
    except KamadoError as e:
        return BackendReport(status=Status.FAILED, reason=str(e), kind="timeout")
    seconds = time.monotonic() - started
    if result.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
        return BackendReport(
            status=Status.FAILED,
            reason=f"{ffmpeg_errors.describe(result.returncode)}: "
            f"{ffmpeg_errors.reason(result.stderr_tail)}",
            kind=ffmpeg_errors.classify(result.stderr_tail, result.returncode),
        )
    frames = _last_frame(result.stdout)
    fps = round(frames / seconds, 1) if frames and seconds > 0 else None
    return BackendReport(status=Status.PROVEN, fps=fps)


def _last_frame(progress_text: str) -> int:
    frame = 0
    for line in progress_text.splitlines():
        if line.startswith("frame="):
            try:
                frame = int(line.split("=", 1)[1].strip())
            except ValueError:
                continue
    return frame


def probe_backends(settings: Settings, only: list[Backend] | None = None) -> ProbeReport:
    """Prove each backend with a real encode of a generated 1080i clip."""
    wanted = only or list(Backend)
    encoders = compiled_encoders(settings.encode.ffmpeg)
    reports: dict[Backend, BackendReport] = {}
    with tempfile.TemporaryDirectory(prefix="kamado-probe-") as tmp:
        workdir = Path(tmp)
        sample = make_sample(workdir / "probe.ts", seconds=PROBE_SECONDS,
                             ffmpeg=settings.encode.ffmpeg)  # fmt: skip
        for backend in wanted:
            if ENCODERS[backend] not in encoders:
                reports[backend] = BackendReport(
                    status=Status.ABSENT,
                    reason=f"this ffmpeg has no {ENCODERS[backend]} encoder",
                )
                continue
            reports[backend] = prove(backend, settings, sample, workdir)
    return ProbeReport(backends=reports, probed_at=time.time())


def cached_probe(settings: Settings, *, refresh: bool = False) -> ProbeReport:
    """The probe report cached in the state directory, redone when asked or missing."""
    cache = settings.state_dir / "probe.json"
    if not refresh and cache.is_file():
        try:
            return ProbeReport.model_validate(json.loads(cache.read_text()))
        except (ValueError, OSError):
            pass
    report = probe_backends(settings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    temp = cache.with_suffix(".tmp")
    temp.write_text(report.model_dump_json(indent=2))
    temp.replace(cache)
    return report
