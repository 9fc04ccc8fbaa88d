"""ffmpeg -progress parsing, on blocks captured from Debian 12's ffmpeg 5.1."""

from __future__ import annotations

from worker.progress import ProgressParser

# A real block from ffmpeg 5.1.9 (see the project's ffmpeg reference, section 7).
REAL_BLOCK = """frame=72
fps=66.82
stream_0_0_q=29.0
bitrate= 902.0kbits/s
total_size=262192
out_time_us=2325333
out_time_ms=2325333
out_time=00:00:02.325333
dup_frames=1
drop_frames=0
speed=2.54x
progress=continue"""

EARLY_BLOCK = """frame=0
fps=0.00
bitrate=N/A
total_size=0
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
speed=   0x
progress=continue"""


def feed(parser: ProgressParser, text: str) -> list[object]:
    return [r for line in text.splitlines() if (r := parser.feed(line)) is not None]


def test_real_block_gives_frame_fps_percent_speed_and_eta() -> None:
    parser = ProgressParser(duration_s=10.0, backend="x264")
    (report,) = feed(parser, REAL_BLOCK)
    assert report.frame == 72
    assert report.fps == 66.82
    assert report.speed == 2.54
    assert report.out_time_s == 2.325
    assert report.percent == 23.25
    assert report.eta_s == round((10.0 - 2.325333) / 2.54, 1)
    assert report.backend == "x264"
    assert not report.done


def test_padded_and_missing_values_in_early_blocks_are_not_errors() -> None:
    (report,) = feed(ProgressParser(duration_s=10.0), EARLY_BLOCK)
    assert report.percent == 0.0
    assert report.speed == 0.0
    assert report.eta_s is None


def test_end_block_is_complete() -> None:
    parser = ProgressParser(duration_s=100.0)
    (report,) = feed(parser, REAL_BLOCK.replace("progress=continue", "progress=end"))
    assert report.done and report.percent == 100.0 and report.eta_s == 0.0


def test_percent_is_clamped_when_the_source_duration_was_short() -> None:
    (report,) = feed(ProgressParser(duration_s=1.0), REAL_BLOCK)
    assert report.percent == 100.0


def test_unknown_duration_reports_no_percent_but_keeps_counting() -> None:
    (report,) = feed(ProgressParser(duration_s=None), REAL_BLOCK)
    assert report.percent == 0.0 and report.frame == 72 and report.eta_s is None


def test_out_time_ms_is_microseconds_when_out_time_us_is_absent() -> None:
    text = REAL_BLOCK.replace("out_time_us=2325333\n", "")
    (report,) = feed(ProgressParser(duration_s=10.0), text)
    assert report.out_time_s == 2.325
