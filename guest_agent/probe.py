"""The guest probe: the GPU as the guest sees it, then a real short encode per backend.

Each backend (qsv, vaapi, x264) is proven by encoding a generated 1080i clip through the
argv the profiles build (worker/backends/capabilities.py), and reported proven, failed (ffmpeg's
exact reason and its kind: hardware, option, crash...) or absent. The result is cached in
the state directory; `kamado guest run` redoes it at start, `kamado guest probe --refresh`
on demand.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guest_agent.system import (
    Driver,
    FfmpegBuild,
    RenderNode,
    VaInfo,
    driver,
    ffmpeg_build,
    render_nodes,
    vainfo,
)
from worker.backends.capabilities import (
    BackendReport,
    ProbeReport,
    Status,
    probe_backends,
    store_probe,
    writable_state_dir,
)
from worker.backends.gpu import GpuFound
from worker.captions import CaptionSupport
from worker.profiles import Backend
from worker.settings.model import Settings

CACHE_NAME = "guest-probe.json"


class GuestProbe(BaseModel):
    """Everything one probe found: the environment and each backend's proof."""

    model_config = ConfigDict(frozen=True)

    hostname: str
    backends: dict[Backend, BackendReport]
    render_node: str = Field(description="encode.render_node, the node the argv uses")
    render_nodes: list[RenderNode]
    driver: Driver
    vainfo: VaInfo
    ffmpeg: FfmpegBuild
    hints: list[str] = Field(default_factory=list)
    probed_at: float
    captions: CaptionSupport | None = None
    gpu: GpuFound | None = Field(
        default=None, description="the render node's PCI id, its generation and expectations"
    )

    @property
    def report(self) -> ProbeReport:
        """The backends part, as the worker's capability report."""
        return ProbeReport(
            backends=self.backends, probed_at=self.probed_at, captions=self.captions, gpu=self.gpu
        )

    @property
    def proven(self) -> list[Backend]:
        """Backends that encoded for real, in the order qsv, vaapi, x264."""
        return self.report.proven

    def as_json(self) -> dict[str, Any]:
        """The `--json` shape: backends keyed by name with status, reason, kind and fps."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data


def hints(
    settings: Settings,
    nodes: list[RenderNode],
    drv: Driver,
    backends: dict[Backend, BackendReport],
) -> list[str]:
    """What an operator should look at, read off the facts (never instead of them)."""
    out: list[str] = []
    failed = {b for b, r in backends.items() if r.status is Status.FAILED}
    node = str(settings.encode.render_node)
    if not nodes:
        out.append(
            "no render node under /dev/dri: is the iGPU passed through (vfio-pci on the host) "
            "and the i915 driver loaded in the guest?"
        )
    elif node not in {n.path for n in nodes}:
        found = ", ".join(n.path for n in nodes)
        out.append(f"encode.render_node {node} does not exist; this guest has {found}")
    for n in nodes:
        if not n.usable:
            out.append(
                f"{n.path} is not readable and writable by this user: add it to group {n.group}"
            )
    hardware_failed = failed & {Backend.QSV, Backend.VAAPI}
    if hardware_failed and not any(d in drv.installed for d in ("i965", "iHD")):
        out.append(
            "no Intel VA-API driver installed: i965-va-driver (Haswell) or "
            "intel-media-va-driver (Broadwell and newer)"
        )
    qsv, vaapi = backends.get(Backend.QSV), backends.get(Backend.VAAPI)
    if qsv and vaapi and qsv.status is Status.FAILED and vaapi.status is Status.PROVEN:
        out.append(
            "h264_qsv failed but vaapi works: expected on Haswell (QSV needs Broadwell or newer)"
        )
    return out


def generation_hints(report: ProbeReport) -> list[str]:
    """What the generation table expects on the GPU found, against what was proven."""
    gpu = report.gpu
    if gpu is None or not gpu.generation:
        return [f"GPU generation unknown: {gpu.note}"] if gpu and gpu.pci_id else []
    out = [f"{gpu.name} ({gpu.pci_id}): expected {', '.join(gpu.expected_backends)} "
           f"with {gpu.va_driver}; packages {', '.join(gpu.packages)}"]  # fmt: skip
    for name in gpu.expected_backends:
        item = report.backends.get(Backend(name))
        if item is not None and item.status is not Status.PROVEN:
            out.append(f"{name} is expected to work on {gpu.generation} but did not: "
                       f"{item.reason}")  # fmt: skip
    out += gpu.quirks
    return out


def run_probe(settings: Settings, only: list[Backend] | None = None) -> GuestProbe:
    """Probe the environment and prove each backend now; store the result in the cache."""
    writable_state_dir(settings)
    nodes = render_nodes()
    drv = driver(settings)
    info = vainfo(settings)
    build = ffmpeg_build(settings.encode.ffmpeg)
    report = probe_backends(settings, only=only)
    probe = GuestProbe(
        hostname=socket.gethostname(),
        backends=report.backends,
        render_node=str(settings.encode.render_node),
        render_nodes=nodes,
        driver=drv,
        vainfo=info,
        ffmpeg=build,
        hints=hints(settings, nodes, drv, report.backends) + generation_hints(report),
        probed_at=time.time(),
        captions=report.captions,
        gpu=report.gpu,
    )
    store(settings, probe)
    return probe


def store(settings: Settings, probe: GuestProbe) -> None:
    """Write the guest probe and the worker's capability report (what tasks read)."""
    cache = settings.state_dir / CACHE_NAME
    cache.parent.mkdir(parents=True, exist_ok=True)
    temp = cache.with_suffix(".tmp")
    temp.write_text(probe.model_dump_json(indent=2))
    temp.replace(cache)
    store_probe(settings, probe.report)


def cached(settings: Settings, *, refresh: bool = False) -> GuestProbe:
    """The last guest probe from the cache, or a new one when asked or when there is none."""
    cache = settings.state_dir / CACHE_NAME
    if not refresh and cache.is_file():
        try:
            return GuestProbe.model_validate(json.loads(cache.read_text()))
        except (ValueError, OSError):
            pass
    return run_probe(settings)
