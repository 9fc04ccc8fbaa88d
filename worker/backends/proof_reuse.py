"""Reusing the last backend probe while nothing it depends on has changed.

Proving every backend with real encodes (worker/backends/capabilities.py) costs seconds at every
worker start. Its answer depends only on the ffmpeg build (version, build configuration,
the binary itself), the render node (which device, which kernel driver, which kernel),
the VA and QSV user-space drivers, the settings that shape the probe's argv, and
kamado's own version (the argv builders). This module fingerprints those (cheaply: one
``ffmpeg -version`` and a few ``stat`` calls) and keeps the fingerprint beside the probe
report. A worker start reuses the report when the fingerprint is unchanged and the
report is younger than ``worker.probe_max_age``; otherwise (or with ``--reprobe``) it
probes again for real. A hardware failure of a job on a reused report re-probes before
the job is retried (:func:`after_hardware_failure`), so a reused report never keeps
claiming a backend that now fails.

It wraps the probe (``probe_backends``/``store_probe``) rather than changing it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from worker import process
from worker.backends import capabilities
from worker.backends.capabilities import ProbeReport
from worker.errors import HARDWARE_KINDS, KamadoError
from worker.settings.model import Settings

log = logging.getLogger("kamado.worker")
# Where user-space VA drivers live when LIBVA_DRIVERS_PATH does not say (Debian, Fedora, ...).
VA_DRIVER_DIRS = ("/usr/lib/x86_64-linux-gnu/dri", "/usr/lib64/dri", "/usr/lib/dri",
                  "/usr/local/lib/dri")  # fmt: skip
# The QSV runtimes (Media SDK, oneVPL) in the library directories.
QSV_RUNTIME_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64")
QSV_RUNTIME_GLOBS = ("libmfx*.so*", "libvpl*.so*")
# The modules whose code decides what the probe runs (paths in the worker package): a
# change there is a new kamado.
ARGV_MODULES = ("backends/capabilities.py", "encode/argv.py", "profiles.py", "encode/sample.py")


@dataclass(frozen=True)
class StartProbe:
    """The probe report a worker starts with, and whether it was reused or redone (why)."""

    report: ProbeReport
    reused: bool
    reason: str

    def describe(self) -> str:
        """One line for the worker's and ``kamado demo``'s output."""
        if self.reused:
            return f"encoder probe reused ({self.reason})"
        return f"encoders probed ({self.reason})"


def key_path(settings: Settings) -> Path:
    """Where the fingerprint of the cached probe and the last start's choice are kept."""
    return settings.state_dir / "probe-key.json"


def _stat(path: str) -> list[Any]:
    try:
        st = Path(path).stat()
    except OSError:
        return [path, None]
    return [path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_rdev]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def ffmpeg_identity(ffmpeg: str) -> dict[str, Any]:
    """ffmpeg's version and build configuration, and its binary's identity."""
    found = shutil.which(ffmpeg) or ffmpeg
    try:
        result = process.run([ffmpeg, "-hide_banner", "-version"], timeout=30)
        version = result.stdout if result.returncode == 0 else f"exit {result.returncode}"
    except KamadoError as e:
        version = f"cannot run: {e}"
    return {"version": version, "binary": _stat(os.path.realpath(found))}


def render_node_identity(render_node: Path) -> dict[str, Any]:
    """Which device the render node is: its number, PCI ids, kernel driver, kernel release."""
    sysfs = Path("/sys/class/drm") / render_node.name / "device"
    ids = {name: _read(sysfs / name) for name in ("vendor", "device", "subsystem_device",
                                                  "revision")}  # fmt: skip
    driver = sysfs / "driver"
    return {
        "node": _stat(str(render_node)),
        "pci": os.path.realpath(sysfs) if sysfs.exists() else None,
        "ids": ids,
        "driver": os.path.realpath(driver) if driver.exists() else None,
        "kernel": os.uname().release,
    }


def driver_identity(vaapi_driver: str) -> dict[str, Any]:
    """The VA driver chosen and the files of the VA drivers and QSV runtimes installed."""
    dirs = os.environ.get("LIBVA_DRIVERS_PATH", "").split(":")
    dirs = [d for d in dirs if d] or list(VA_DRIVER_DIRS)
    va = sorted(str(p) for d in dirs for p in Path(d).glob("*_drv_video.so"))
    qsv = sorted(
        str(p)
        for d in QSV_RUNTIME_DIRS
        for pattern in QSV_RUNTIME_GLOBS
        for p in Path(d).glob(pattern)
    )
    return {
        "setting": vaapi_driver,
        "env": {k: os.environ.get(k) for k in ("LIBVA_DRIVER_NAME", "LIBVA_DRIVERS_PATH")},
        "va": [_stat(p) for p in va],
        "qsv": [_stat(p) for p in qsv],
    }


def kamado_identity() -> dict[str, Any]:
    """kamado's version and a digest of the code that builds the probe's argv."""
    try:
        version = metadata.version("kamado")
    except metadata.PackageNotFoundError:
        version = "unknown"
    here = Path(__file__).parents[1]  # worker/
    digest = hashlib.sha256()
    for name in ARGV_MODULES:
        digest.update((here / name).read_bytes())
    return {"version": version, "code": digest.hexdigest()[:16]}


def probe_key(settings: Settings) -> dict[str, Any]:
    """Everything the probe's answer depends on, as plain JSON."""
    enc = settings.encode
    return {
        "ffmpeg": ffmpeg_identity(enc.ffmpeg),
        "render_node": render_node_identity(enc.render_node),
        "drivers": driver_identity(enc.vaapi_driver),
        "kamado": kamado_identity(),
        "settings": {
            "ffmpeg": enc.ffmpeg,
            "ffprobe": enc.ffprobe,
            "render_node": str(enc.render_node),
            "vaapi_driver": enc.vaapi_driver,
            "probe_seconds": settings.guest.probe_seconds,
            "probe_shapes": settings.guest.probe_shapes,
        },
    }


def _changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Which part of the key differs, in words ('' when none)."""
    names = {
        "ffmpeg": "the ffmpeg build changed",
        "render_node": "the render node or its kernel driver changed",
        "drivers": "the VA/QSV drivers changed",
        "kamado": "kamado's version changed",
        "settings": "the encode settings changed",
    }
    for part, words in names.items():
        if old.get(part) != new.get(part):
            return words
    return ""


def _load(settings: Settings) -> tuple[dict[str, Any], ProbeReport] | None:
    try:
        stored = json.loads(key_path(settings).read_text())
        cache = capabilities.cache_path(settings)
        report = ProbeReport.model_validate(json.loads(cache.read_text()))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("probed_at") != report.probed_at:
        return None  # the report was rewritten by something that did not record a key
    key = stored.get("key")
    return (key, report) if isinstance(key, dict) else None


def _save(settings: Settings, key: dict[str, Any], start: StartProbe) -> None:
    path = key_path(settings)
    temp = path.with_suffix(".tmp")
    data = {
        "key": key,
        "probed_at": start.report.probed_at,
        "last_start": {"reused": start.reused, "reason": start.reason, "at": time.time()},
    }
    temp.write_text(json.dumps(data, indent=2))
    temp.replace(path)


def reuse_reason(
    settings: Settings, key: dict[str, Any], now: float
) -> tuple[ProbeReport | None, str]:
    """The cached report if it may be reused, else None; and why, in words."""
    loaded = _load(settings)
    if loaded is None:
        return None, "no earlier probe with a recorded fingerprint"
    old_key, report = loaded
    changed = _changed(old_key, key)
    if changed:
        return None, changed
    age = now - report.probed_at
    limit = settings.worker.probe_max_age
    if limit <= 0 or age > limit or age < 0:
        return None, f"the last probe is {age / 3600:.1f} h old (worker.probe_max_age {limit:g} s)"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.probed_at))
    return report, f"ffmpeg, render node, drivers and kamado unchanged since {when}"


def probe_at_start(settings: Settings, *, reprobe: bool = False) -> StartProbe:
    """The report a starting worker uses: the cached one when it may be reused, else a new one."""
    capabilities.writable_state_dir(settings)
    key = probe_key(settings)
    report, reason = (None, "--reprobe") if reprobe else reuse_reason(settings, key, time.time())
    if report is not None:
        start = StartProbe(report, reused=True, reason=reason)
    else:
        fresh = capabilities.probe_backends(settings)
        capabilities.store_probe(settings, fresh)
        start = StartProbe(fresh, reused=False, reason=reason)
    _save(settings, key, start)
    log.info("%s", start.describe())
    return start


def last_start(settings: Settings) -> tuple[bool, str] | None:
    """Whether the last worker start on this state directory reused the probe, and why."""
    try:
        data = json.loads(key_path(settings).read_text())
        last = data["last_start"]
        return bool(last["reused"]), str(last["reason"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stored_probed_at(settings: Settings) -> float | None:
    """When the report the last start or re-probe recorded was made (None: none recorded)."""
    try:
        value = json.loads(key_path(settings).read_text()).get("probed_at")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def was_reused(settings: Settings) -> bool:
    """True when the cached report was reused by the last start, not proven by it."""
    last = last_start(settings)
    return last is not None and last[0]


def after_hardware_failure(settings: Settings, kind: str) -> ProbeReport | None:
    """Re-probe when a job failed on the hardware while the report in use was a reused one.

    Returns the new report (already stored), or None when no re-probe was due: the failure
    was not the hardware's, or the report was proven by this worker's own start.
    """
    if kind not in HARDWARE_KINDS or not was_reused(settings):
        return None
    log.warning("a %s failure on a reused probe result: probing the backends again", kind)
    key = probe_key(settings)
    fresh = capabilities.probe_backends(settings)
    capabilities.store_probe(settings, fresh)
    _save(settings, key, StartProbe(fresh, reused=False, reason=f"a job's {kind} failure"))
    return fresh
