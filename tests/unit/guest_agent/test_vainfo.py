"""vainfo's output read into the probe: driver, H.264 encode entry points, errors."""

from __future__ import annotations

from guest_agent.system import parse_vainfo
from tests.unit.guest_agent import intel_gpu


def test_haswell_falls_back_from_ihd_to_i965_and_encodes_h264() -> None:
    info = parse_vainfo(intel_gpu.HASWELL_VAINFO, 0)
    assert info.ok
    assert info.driver_version == "Intel i965 driver for Intel(R) Haswell - 2.4.1"
    assert info.vaapi_version == "1.15 (libva 2.15.0)"
    assert info.h264_encode == [
        "VAProfileH264ConstrainedBaseline:VAEntrypointEncSlice",
        "VAProfileH264Main:VAEntrypointEncSlice",
    ]
    assert info.mpeg2_decode


def test_ihd_with_tab_separated_entries_lists_low_power_encode_and_video_processing() -> None:
    info = parse_vainfo(intel_gpu.IHD_VAINFO, 0)
    assert info.ok
    assert info.driver_version.startswith("Intel iHD driver")
    assert "VAProfileH264Main:VAEntrypointEncSliceLP" in info.h264_encode
    assert "VAProfileH264High:VAEntrypointEncSlice" in info.h264_encode
    assert info.video_proc


def test_a_vainfo_that_finds_no_driver_is_not_ok_and_keeps_libvas_words() -> None:
    info = parse_vainfo(intel_gpu.VAINFO_NO_DRIVER, 255)
    assert not info.ok
    assert info.error == "vaInitialize failed with error code -1 (unknown libva error),exit"
    assert info.h264_encode == []
