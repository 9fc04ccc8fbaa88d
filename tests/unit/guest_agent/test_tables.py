"""The probe tables print ffmpeg's words as they are: its lines start with "[codec @ 0x...]"."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from guest_agent.tables import backends_table
from worker.backends.capabilities import BackendReport, ProbeReport, Status
from worker.cli.worker_cmd import probe_table
from worker.profiles import Backend

# What Debian 12's ffmpeg prints when h264_qsv finds no usable GPU (libmfx).
QSV_REASON = (
    "exit 1: [h264_qsv @ 0x55d0c2b0e3c0] Error initializing an internal MFX session: "
    "unsupported (-3)"
)


def rendered(table: object) -> str:
    console = Console(width=400, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def report(reason: str) -> ProbeReport:
    failed = BackendReport(status=Status.FAILED, reason=reason, kind="hardware")
    return ProbeReport(backends={Backend.QSV: failed}, probed_at=0.0)


def test_ffmpegs_bracketed_prefix_survives_both_probe_tables() -> None:
    for table in (backends_table(report(QSV_REASON)), probe_table(report(QSV_REASON))):
        assert "[h264_qsv @ 0x55d0c2b0e3c0] Error initializing" in rendered(table)


@given(reason=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=80))
def test_any_reason_is_printed_verbatim(reason: str) -> None:
    shown = rendered(backends_table(report(reason)))
    for word in reason.split():
        assert word in shown
