"""Probe failures read from real Intel GPU messages: hardware missing, bad option, crash."""

from __future__ import annotations

import pytest

from tests.unit.guest_agent import intel_gpu
from tests.unit.guest_agent.intel_gpu import Failure
from worker.backends.capabilities import classify_failure, failure_reason


@pytest.mark.parametrize("name", sorted(intel_gpu.ALL))
def test_each_real_world_failure_gets_its_kind(name: str) -> None:
    failure = intel_gpu.ALL[name]
    assert classify_failure(failure.stderr, failure.returncode) == failure.kind


@pytest.mark.parametrize("name", sorted(intel_gpu.ALL))
def test_the_reason_quotes_the_telling_line_not_the_generic_last_one(name: str) -> None:
    failure = intel_gpu.ALL[name]
    reason = failure_reason(failure.stderr, failure.returncode)
    assert failure.telling in reason
    assert "maybe incorrect parameters" not in reason


def test_the_reason_says_how_ffmpeg_ended() -> None:
    assert failure_reason(*_args(intel_gpu.VAAPI_NO_DISPLAY)).startswith("exit 1: ")
    crash = failure_reason(*_args(intel_gpu.SANDY_BRIDGE_LIBMFX_CRASH))
    assert crash.startswith("killed by SIGSEGV: ")


def test_the_pointer_in_ffmpegs_context_prefix_is_dropped_so_reasons_compare_equal() -> None:
    reason = failure_reason(*_args(intel_gpu.VAAPI_NO_DISPLAY))
    assert reason == "exit 1: No VA display found for device /dev/dri/renderD128."


def test_a_qsv_runtime_refusing_a_mode_is_an_option_problem_not_missing_hardware() -> None:
    for failure in (intel_gpu.QSV_RATECONTROL_UNSUPPORTED, intel_gpu.QSV_CONFLICTING_MODES):
        assert classify_failure(*_args(failure)) == "option"


def test_a_death_by_signal_without_a_known_message_is_a_crash() -> None:
    assert classify_failure("", -6) == "crash"


def _args(failure: Failure) -> tuple[str, int]:
    return failure.stderr, failure.returncode
