"""Pure checks on media facts: ffmpeg error classes, MP4 box order, TS cuts, durations."""

from __future__ import annotations

import struct
from pathlib import Path

from worker.encode.ffprobe import ts_tail_cut
from worker.encode.stderr import classify, describe, reason
from worker.encode.verify import check_duration, top_level_boxes
from worker.settings.model import VerifySettings

# Messages ffmpeg prints (the project's ffmpeg reference, section 8).
NO_VA = """[AVHWDeviceContext @ 0x55e2ae03e300] No VA display found for device /dev/dri/renderD128.
Device creation failed: -22.
Failed to set value 'vaapi=va:/dev/dri/renderD128' for option 'init_hw_device': Invalid argument"""
MFX = "[h264_qsv @ 0x1] Error initializing an internal MFX session: unsupported (-3)"
BAD_OPT = "Unrecognized option 'nosuchopt'.\nError splitting the argument list: Option not found"
BAD_VALUE = (
    'Unable to parse option value "ultrafast"\nError setting option preset to value ultrafast.\n'
    "Error while opening encoder for output stream #0:0 - maybe incorrect parameters"
)


def test_hardware_missing_is_told_apart_from_a_bad_option() -> None:
    assert classify(NO_VA, 1) == "hardware"
    assert classify(MFX, 1) == "hardware"
    assert classify(BAD_OPT, 1) == "option"
    assert classify(BAD_VALUE, 1) == "option"


def test_disk_full_and_death_by_signal_are_recognised() -> None:
    assert classify("av_interleaved_write_frame(): No space left on device", 1) == "disk"
    assert classify("", -11) == "crash"
    assert describe(-11) == "killed by SIGSEGV"
    assert describe(1) == "exit 1"


def test_the_reason_is_the_telling_line_not_the_generic_last_one() -> None:
    assert reason(BAD_VALUE).startswith("Unable to parse option value")
    assert "No VA display found" in reason(NO_VA)


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_top_level_boxes_are_listed_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(box(b"ftyp", b"isom") + box(b"moov", b"x" * 20) + box(b"mdat", b"y" * 100))
    assert top_level_boxes(path) == ["ftyp", "moov", "mdat"]


def ts_packets(count: int) -> bytes:
    return (b"\x47" + b"\x00" * 187) * count


def test_a_ts_ending_on_a_packet_boundary_is_not_cut(tmp_path: Path) -> None:
    path = tmp_path / "a.ts"
    path.write_bytes(ts_packets(10))
    assert ts_tail_cut(path) == 0


def test_a_ts_cut_inside_its_last_packet_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.ts"
    path.write_bytes(ts_packets(10)[:-100])
    assert ts_tail_cut(path) == 88


def test_a_recording_that_joined_mid_packet_is_not_mistaken_for_a_cut_one(tmp_path: Path) -> None:
    path = tmp_path / "a.ts"
    path.write_bytes(ts_packets(10)[50:])
    assert ts_tail_cut(path) == 0


def test_duration_tolerance_is_the_larger_of_seconds_and_ratio() -> None:
    cfg = VerifySettings(duration_tolerance_s=2.0, duration_tolerance_ratio=0.01)
    assert check_duration(1801.5, 1800.0, cfg) == ""
    assert check_duration(1817.0, 1800.0, cfg) == ""  # 1 % of 1800 s is 18 s
    assert "differs" in check_duration(1700.0, 1800.0, cfg)
    assert check_duration(None, 10.0, cfg) == "output has no duration"
