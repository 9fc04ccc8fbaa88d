"""Which backends work on this machine, proven by a real short encode through each one.

"Compiled into ffmpeg" and "the hardware works" are different questions: a backend is
*absent* when ffmpeg lacks its encoder or a filter its argv needs, *failed* when a real
encode through the same argv the profiles build fails (with ffmpeg's exact reason and a
kind: hardware, option, crash, stalled...), and *proven* when it produced a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from worker import process
from worker.backends.gpu import GpuFound, detect_gpu
from worker.backends.proof import (
    SampleReport,
    check_sample,
    make_samples,
    profiles_for,
    sample_info,
)
from worker.captions import CaptionSupport, binary_key, caption_support
from worker.encode import stderr as ffmpeg_stderr
from worker.encode.argv import build_command
from worker.encode.ffprobe import MediaInfo, read_media
from worker.errors import HARDWARE_KINDS, ConfigError, EncodeErrorKind, KamadoError
from worker.profiles import BUILTIN_PROFILES, Backend, Profile
from worker.settings.model import Settings

__all__ = [
    "BackendReport",
    "ProbeReport",
    "Status",
    "compiled_decoders",
    "compiled_encoders",
    "compiled_filters",
    "probe_backends",
    "store_probe",
    "writable_state_dir",
]

ENCODERS = {Backend.QSV: "h264_qsv", Backend.VAAPI: "h264_vaapi", Backend.X264: "libx264"}
# Filters the profiles' argv uses per backend (worker/encode/argv.py) on a 1080i source.
FILTERS = {
    Backend.QSV: ("vpp_qsv",),
    Backend.VAAPI: ("deinterlace_vaapi", "scale_vaapi"),
    Backend.X264: ("bwdif", "scale"),
}
# Kept for callers that read them; the values in use come from settings.guest.
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 120.0
# The QSV runtime refusing a rate-control mode means the hardware answered and the
# option is wrong (the project's ffmpeg reference, §8), so it is not "hardware missing".
# What ffmpeg 5.1 says on a part whose H.264 encoder is low-power (VDEnc) only: vaapi
# looked for VAEntrypointEncSlice alone (vaapi_encode.c), qsv asked for ICQ, which VDEnc
# lacks (qsvenc.c check_enc_param). Either way: retry with -low_power 1 and CQP.
_LOW_POWER_CAUSE = re.compile(
    r"No usable encoding entrypoint found for profile|"
    r"Selected ratecontrol mode is (?:unsupported|not supported by the QSV runtime)"
)
# The same holds for the low-power causes above and their opposite, low power asked of a
# part without it (qsvenc.c check_enc_param).
_QSV_MODE = re.compile(
    r"Selected ratecontrol mode is (?:unsupported|not supported by the QSV runtime)|"
    r"No usable encoding entrypoint found for profile|Low power mode is unsupported|"
    r"More than one of: \{ constant qscale, lookahead, VCM \} requested"
)

# ffmpeg's "[AVHWDeviceContext @ 0x55...] " prefix: a pointer that differs on every run.
_CONTEXT = re.compile(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\] ")


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
    seconds: float | None = None
    low_power: bool = False  # proven (or failed) on the low-power encoder
    low_power_cause: bool = False  # ffmpeg named the low-power-only cause
    driver: str = ""  # the VA-API driver the argv asked for ("" leaves it to libva)
    samples: list[SampleReport] = []  # each broadcast-like sample and profile


class ProbeReport(BaseModel):
    """Every backend's probe result on this machine."""

    model_config = ConfigDict(frozen=True)

    backends: dict[Backend, BackendReport]
    probed_at: float
    # Whether this ffmpeg decodes ARIB captions (None: a report from before it was asked).
    captions: CaptionSupport | None = None
    gpu: GpuFound | None = None  # the render node's GPU and its generation

    @property
    def proven(self) -> list[Backend]:
        """Backends that encoded for real, in the order qsv, vaapi, x264."""
        return [b for b in Backend if self.backends.get(b, _ABSENT).status is Status.PROVEN]


_ABSENT = BackendReport(status=Status.ABSENT)


def classify_failure(stderr_tail: str, returncode: int | None) -> EncodeErrorKind:
    """The kind of a probe failure: hardware, option, crash, or ffmpeg_stderr's other kinds."""
    if _QSV_MODE.search(stderr_tail):
        return EncodeErrorKind.OPTION
    return ffmpeg_stderr.classify(stderr_tail, returncode)


def failure_reason(stderr_tail: str, returncode: int | None) -> str:
    """How ffmpeg ended and its most telling line, e.g. 'exit 1: No VA display found ...'."""
    lines = [li.strip() for li in stderr_tail.splitlines() if _QSV_MODE.search(li)]
    line = lines[0] if lines else ffmpeg_stderr.reason(stderr_tail)
    return f"{ffmpeg_stderr.describe(returncode)}: {_CONTEXT.sub('', line)}"


# ffmpeg's -encoders/-decoders/-filters per binary (path and stat, worker/captions.py):
# a probe asks for each more than once, and every ffmpeg start costs (seconds in an
# emulated guest). A new or replaced binary has a new key.
_listings: dict[tuple[tuple[str, ...], str], list[list[str]]] = {}


def _listing(ffmpeg: str, what: str) -> list[list[str]]:
    key = binary_key(ffmpeg)
    if key is not None and (key, what) in _listings:
        return _listings[(key, what)]
    result = process.run([ffmpeg, "-hide_banner", what], timeout=30)
    lines = [line.split() for line in result.stdout.splitlines()]
    if key is not None and result.returncode == 0:
        _listings[(key, what)] = lines
    return lines


def compiled_encoders(ffmpeg: str) -> set[str]:
    """The encoder names this ffmpeg build has."""
    return {p[1] for p in _listing(ffmpeg, "-encoders") if len(p) >= 2 and len(p[0]) == 6}


def compiled_decoders(ffmpeg: str) -> set[str]:
    """The decoder names this ffmpeg build has."""
    return {p[1] for p in _listing(ffmpeg, "-decoders") if len(p) >= 2 and len(p[0]) == 6}


def compiled_filters(ffmpeg: str) -> set[str]:
    """The filter names this ffmpeg build has."""
    return {
        p[1]
        for p in _listing(ffmpeg, "-filters")
        if len(p) >= 3 and len(p[0]) == 3 and "->" in p[2]
    }


def prove(
    backend: Backend,
    settings: Settings,
    sample: Path,
    workdir: Path,
    *,
    profile: Profile | None = None,
    low_power: bool = False,
    driver: str = "",
    info: MediaInfo | None = None,
) -> BackendReport:
    """Encode one sample with one backend through the profiles' own argv (the built-in
    h264-auto unless ``profile``); PROVEN here means ffmpeg wrote a file, which
    ``prove_backend`` then verifies. ``info``: the sample's ffprobe, when already read."""
    profile = profile or BUILTIN_PROFILES["h264-auto"]
    info = info or read_media(settings.encode.ffprobe, sample)
    output = workdir / f"probe-{backend.value}-{sample.stem}.mp4"
    command = build_command(
        backend, profile, info, sample, output,
        ffmpeg=settings.encode.ffmpeg,
        render_node=settings.encode.render_node,
        vaapi_driver=driver or settings.encode.vaapi_driver,
        low_power=low_power,
    )  # fmt: skip
    timeout = settings.guest.probe_timeout
    started = time.monotonic()
    try:
        result = process.run(command.argv, timeout=timeout, env=command.env)
    except KamadoError as e:
        # A probe that hangs is what a hung GPU does: the same kind ffmpeg_run gives it.
        return BackendReport(status=Status.FAILED, reason=str(e), kind=EncodeErrorKind.STALLED)
    seconds = round(time.monotonic() - started, 3)
    if result.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
        if result.returncode == 0:
            return BackendReport(
                status=Status.FAILED,
                reason="exit 0 but no output file was written",
                kind=EncodeErrorKind.ENCODE,
                seconds=seconds,
            )
        return BackendReport(
            status=Status.FAILED,
            reason=failure_reason(result.stderr_tail, result.returncode),
            kind=classify_failure(result.stderr_tail, result.returncode),
            seconds=seconds,
            low_power=low_power,
            low_power_cause=not low_power and needs_low_power(result.stderr_tail),
        )
    frames = _last_frame(result.stdout)
    fps = round(frames / seconds, 1) if frames and seconds > 0 else None
    return BackendReport(status=Status.PROVEN, fps=fps, seconds=seconds, low_power=low_power)


def needs_low_power(stderr_tail: str) -> bool:
    """True when ffmpeg names the cause a low-power-only encoder gives (fixtures quote it)."""
    return bool(_LOW_POWER_CAUSE.search(stderr_tail))


def _last_frame(progress_text: str) -> int:
    frame = 0
    for line in progress_text.splitlines():
        if line.startswith("frame="):
            try:
                frame = int(line.split("=", 1)[1].strip())
            except ValueError:
                continue
    return frame


def missing_parts(backend: Backend, encoders: set[str], filters: set[str] | None) -> str:
    """Why ffmpeg cannot even try this backend ('' when everything is compiled in)."""
    if ENCODERS[backend] not in encoders:
        return f"this ffmpeg has no {ENCODERS[backend]} encoder"
    if filters is not None:
        lacking = [f for f in FILTERS[backend] if f not in filters]
        if lacking:
            return f"this ffmpeg has no {', '.join(lacking)} filter"
    return ""


def probe_backends(settings: Settings, only: list[Backend] | None = None) -> ProbeReport:
    """Prove each backend with real encodes of broadcast-like samples (worker/backends/proof.py),
    every output verified as a job's would be."""
    wanted = only or list(Backend)
    encoders = compiled_encoders(settings.encode.ffmpeg)
    filters = compiled_filters(settings.encode.ffmpeg)
    gpu = detect_gpu(settings.encode.render_node)
    reports: dict[Backend, BackendReport] = {}
    with tempfile.TemporaryDirectory(prefix="kamado-probe-") as tmp:
        workdir = Path(tmp)
        samples = make_samples(settings, workdir)
        infos: dict[str, MediaInfo] = {}  # each sample probed once, not once per backend
        for backend in wanted:
            missing = missing_parts(backend, encoders, filters)
            if missing:
                reports[backend] = BackendReport(status=Status.ABSENT, reason=missing)
                continue
            reports[backend] = prove_backend(backend, settings, samples, workdir, gpu, infos)
    return ProbeReport(
        backends=reports,
        probed_at=time.time(),
        captions=caption_support(settings.encode.ffmpeg),
        gpu=gpu,
    )


def prove_backend(
    backend: Backend,
    settings: Settings,
    samples: dict[str, Path],
    workdir: Path,
    gpu: GpuFound,
    infos: dict[str, MediaInfo] | None = None,
) -> BackendReport:
    """Every sample through every configured profile of one backend: PROVEN only when all
    passed; otherwise FAILED naming the first shape and profile that did not, and why."""
    low_power = backend.hardware and gpu.low_power_required
    driver = settings.encode.vaapi_driver or (gpu.va_driver if backend is Backend.VAAPI else "")
    results: list[SampleReport] = []
    first: BackendReport | None = None
    failed_on = ""
    infos = {} if infos is None else infos
    for shape, sample in samples.items():
        if shape not in infos:
            infos[shape] = sample_info(settings, sample)
        info = infos[shape]
        for names, profile in profiles_for(backend, settings):
            # A device that failed like this fails the same way on every other sample.
            if first is not None and first.kind in HARDWARE_KINDS:
                results.append(SampleReport(
                    shape=shape, profiles=names, passed=False, kind="skipped",
                    reason=f"not tried: {backend.value} failed on {failed_on}",
                ))  # fmt: skip
                continue
            run = prove(backend, settings, sample, workdir, profile=profile,
                        low_power=low_power, driver=driver, info=info)  # fmt: skip
            if run.low_power_cause:
                low_power = True
                run = prove(backend, settings, sample, workdir, profile=profile,
                            low_power=True, driver=driver, info=info)  # fmt: skip
            output = workdir / f"probe-{backend.value}-{sample.stem}.mp4"
            reason, kind = run.reason, run.kind
            if run.status is Status.PROVEN:
                reason = check_sample(output, info, profile, settings)
                kind = "output" if reason else ""
            output.unlink(missing_ok=True)
            results.append(SampleReport(
                shape=shape, profiles=names, passed=not reason, reason=reason, kind=kind,
                seconds=run.seconds, frames=None if reason else _frames(run),
            ))  # fmt: skip
            if reason and first is None:
                first = run.model_copy(update={"reason": reason, "kind": kind})
                failed_on = shape
    speed = next((r for r in results if r.passed), None)
    common = {"low_power": low_power, "driver": driver, "samples": results}
    if first is None:
        fps = (
            round(speed.frames / speed.seconds, 1)
            if speed and speed.frames and speed.seconds
            else None
        )
        return BackendReport(
            status=Status.PROVEN, fps=fps, seconds=speed.seconds if speed else None, **common
        )
    bad = next(r for r in results if not r.passed)
    return BackendReport(
        status=Status.FAILED,
        reason=f"{bad.shape} ({', '.join(bad.profiles)}): {first.reason}",
        kind=first.kind,
        seconds=first.seconds,
        **common,
    )


def _frames(run: BackendReport) -> int | None:
    if run.fps is None or not run.seconds:
        return None
    return round(run.fps * run.seconds)


def encode_hardware(settings: Settings, backend: Backend) -> tuple[str, bool]:
    """The VA driver and low-power choice the last probe proved for ``backend`` (a job
    builds the argv the probe verified); ("", False) when nothing is cached."""
    cache = cache_path(settings)
    try:
        report = ProbeReport.model_validate(json.loads(cache.read_text()))
    except (ValueError, OSError):
        return settings.encode.vaapi_driver, False
    item = report.backends.get(backend)
    if item is None or item.status is not Status.PROVEN:
        return settings.encode.vaapi_driver, False
    return item.driver or settings.encode.vaapi_driver, item.low_power


def writable_state_dir(settings: Settings) -> Path:
    """The state directory, created if missing; ConfigError when this user cannot write it.

    Checked before a probe, so ``kamado guest probe`` run by hand before the unit ever
    started (systemd creates /var/lib/kamado then) says what to do instead of failing
    with a traceback after the encodes.
    """
    directory = settings.state_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"state_dir {directory}: cannot create it or write there ({e.strerror or e}); "
            "the units create it when they first start (StateDirectory=kamado). By hand: "
            f"sudo install -d -o kamado -g kamado -m 0750 {directory}, and run kamado as "
            "the user that owns it (sudo -u kamado ...)"
        ) from e
    return directory


def cache_path(settings: Settings) -> Path:
    """Where the last probe report is kept."""
    return settings.state_dir / "probe.json"


def store_probe(settings: Settings, report: ProbeReport) -> None:
    """Write a probe report to the cache atomically."""
    cache = cache_path(settings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    temp = cache.with_suffix(".tmp")
    temp.write_text(report.model_dump_json(indent=2))
    temp.replace(cache)


def cached_probe(settings: Settings, *, refresh: bool = False) -> ProbeReport:
    """The probe report cached in the state directory, redone when asked or missing."""
    cache = cache_path(settings)
    if not refresh and cache.is_file():
        try:
            return ProbeReport.model_validate(json.loads(cache.read_text()))
        except (ValueError, OSError):
            pass
    writable_state_dir(settings)
    report = probe_backends(settings)
    store_probe(settings, report)
    return report
