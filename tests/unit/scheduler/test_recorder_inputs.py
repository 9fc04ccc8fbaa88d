"""Parsing what EPGStation, Chinachu and EDCB hand a hook."""

from __future__ import annotations

import pytest

from scheduler.errors import HookInputError
from scheduler.recorders import (
    chinachu_input,
    edcb_input,
    epgstation_input,
)


def test_epgstation_null_and_empty_values_are_absent_and_times_are_milliseconds() -> None:
    got = epgstation_input(
        {
            "RECPATH": "/rec/a.ts",
            "RECORDEDID": "7",
            "DROP_CNT": "null",
            "ERROR_CNT": "",
            "SCRAMBLING_CNT": "3",
            "STARTAT": "1700000000000",
            "ENDAT": "1700000060000",
            "DESCRIPTION": "null",
        },
        failed=True,
    )
    assert got.failed
    assert got.recording.drop_count is None
    assert got.recording.error_count is None
    assert got.recording.scrambling_count == 3
    assert got.recording.duration_s == 60


@pytest.mark.parametrize("value", ["null", "", "undefined"])
def test_epgstation_without_a_recording_path_names_the_variable(value: str) -> None:
    with pytest.raises(HookInputError, match="RECPATH is not set"):
        epgstation_input({"RECPATH": value}, failed=False)


def test_epgstation_negative_counts_are_refused_with_the_variable_name() -> None:
    with pytest.raises(HookInputError, match="DROP_CNT = '-1'"):
        epgstation_input({"RECPATH": "/a.ts", "DROP_CNT": "-1"}, failed=False)


@pytest.mark.parametrize(
    ("program", "message"),
    [("[1, 2]", "must be a JSON object"), ("", "is not JSON"), ('{"start": "soon"}', "start")],
)
def test_chinachu_programme_json_errors_are_named(program: str, message: str) -> None:
    with pytest.raises(HookInputError, match=message):
        chinachu_input("./recorded/a.m2ts", program)


def test_edcb_success_is_not_a_failure_and_times_carry_their_offset() -> None:
    got = edcb_input({"FilePath": "/r/a.ts", "Result": "録画終了", "StartTime":
                      "2024-01-01T21:00:00+09:00", "DurationSecond": "60"})  # fmt: skip
    assert not got.failed
    assert got.recording.duration_s == 60


def test_edcb_time_without_an_offset_is_refused() -> None:
    with pytest.raises(HookInputError, match="StartTime"):
        edcb_input({"FilePath": "/r/a.ts", "StartTime": "2024-01-01T21:00:00"})
