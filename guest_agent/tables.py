"""The guest probe as tables for people: the GPU environment and each backend's proof."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from guest_agent.probe import GuestProbe
from worker.backends.capabilities import BackendReport, ProbeReport, Status
from worker.captions import support_words


def backends_table(report: ProbeReport) -> Table:
    """Each backend: status, the kind of failure, speed and ffmpeg's exact reason."""
    table = Table(title="encoder backends (broadcast-like samples, each output verified)")
    for column in ("backend", "status", "kind", "fps", "reason"):
        table.add_column(column)
    colours = {Status.PROVEN: "green", Status.FAILED: "red", Status.ABSENT: "yellow"}
    for backend, item in report.backends.items():
        table.add_row(
            backend.value,
            f"[{colours[item.status]}]{item.status.value}[/]",
            item.kind,
            f"{item.fps:g}" if item.fps else "",
            Text(_proven_for(item) + item.reason),  # ffmpeg's "[h264_qsv @ 0x...]": not markup
        )
    return table


def _proven_for(item: BackendReport) -> str:
    passed = [s.shape for s in item.samples if s.passed]
    if not passed or item.status is Status.PROVEN:
        return ""
    return f"proven only for {', '.join(passed)}. "


def environment_table(probe: GuestProbe) -> Table:
    """Render nodes, driver, vainfo and ffmpeg as a two-column table."""
    table = Table(title=f"GPU environment on {probe.hostname}", show_header=False)
    table.add_column("what")
    table.add_column("found")
    nodes = ", ".join(
        f"{n.path} (group {n.group}{'' if n.usable else ', not accessible'})"
        for n in probe.render_nodes
    )
    table.add_row("render nodes", nodes or "[red]none under /dev/dri[/]")
    table.add_row("render node used", probe.render_node)
    drv = probe.driver
    table.add_row(
        "VA-API driver",
        f"LIBVA_DRIVER_NAME={drv.libva_driver_name or '(unset)'}, "
        f"encode.vaapi_driver={drv.configured or '(auto)'}, "
        f"installed: {', '.join(drv.installed) or 'none'}",
    )
    va = probe.vainfo
    if not va.installed:
        table.add_row("vainfo", Text(va.error))
    elif va.ok:
        table.add_row(
            "vainfo", f"{va.driver_version}; H.264 encode: {len(va.h264_encode)} profiles"
        )
    else:
        table.add_row("vainfo", Text.assemble(("failed", "red"), f": {va.error}"))
    gpu = probe.gpu
    if gpu is not None:
        found = f"{gpu.name} ({gpu.pci_id})" if gpu.generation else f"{gpu.pci_id} {gpu.note}"
        table.add_row("GPU generation", Text(found.strip()))
    table.add_row("ffmpeg", Text(probe.ffmpeg.version))
    missing = [n for n, ok in {**probe.ffmpeg.encoders, **probe.ffmpeg.filters}.items() if not ok]
    table.add_row("ffmpeg lacks", ", ".join(missing) or "nothing kamado uses")
    table.add_row("ARIB captions", Text(support_words(probe.captions)))
    return table
