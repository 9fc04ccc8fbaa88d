"""The job contract: ids derived from source and profile, payloads validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.errors import BadInputError
from worker.jobs import Job, JobState, Recording, derive_job_id


def test_second_submission_of_same_recording_is_one_job(tmp_path: Path) -> None:
    first = Job.create(str(tmp_path / "番組 A.ts"), "h264-auto")
    second = Job.create(str(tmp_path / "番組 A.ts"), "h264-auto")
    assert first.id == second.id


def test_same_recording_with_another_profile_is_another_job(tmp_path: Path) -> None:
    source = str(tmp_path / "a.ts")
    assert Job.create(source, "h264-auto").id != Job.create(source, "h264-x264").id


def test_relative_and_absolute_spellings_are_the_same_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert derive_job_id("a.ts", "p") == derive_job_id(str(tmp_path / "a.ts"), "p")


def test_output_defaults_to_an_mp4_beside_the_source(tmp_path: Path) -> None:
    job = Job.create(str(tmp_path / "rec" / "show.m2ts"), "h264-auto")
    assert job.output == str(tmp_path / "rec" / "show.mp4")


def test_output_dir_puts_the_mp4_there(tmp_path: Path) -> None:
    job = Job.create('/rec/show\'s "quote" $(x).ts', "h264-auto", output_dir=tmp_path)
    # '"' is one of the characters Windows (and so a Samba share) refuses: full-width.
    assert job.output == str(tmp_path / "show's ＂quote＂ $(x).mp4")


def test_remote_sources_keep_their_uri(tmp_path: Path) -> None:
    job = Job.create("sftp://recorder/rec/a b.ts", "h264-auto")
    assert job.source == "sftp://recorder/rec/a b.ts"
    assert job.output == "sftp://recorder/rec/a b.mp4"


def test_payload_round_trips_through_json() -> None:
    job = Job.create("/rec/a.ts", "h264-auto", recording=Recording(title="ニュース", drop_count=0))
    again = Job.from_payload(job.model_dump(mode="json"))
    assert again == job


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "../../etc"}, "id"),
        ({"priority": 12}, "priority"),
        ({"source": ""}, "source"),
        ({"schema_version": 99}, "schema_version"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_payloads_are_rejected_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    payload = Job.create("/rec/a.ts", "h264-auto").model_dump(mode="json") | change
    with pytest.raises(BadInputError, match=f"bad job payload: {field}"):
        Job.from_payload(payload)


def test_a_payload_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(BadInputError, match="bad job payload"):
        Job.from_payload(["not", "a", "job"])


def test_final_states_are_done_failed_and_cancelled() -> None:
    assert {s for s in JobState if s.final} == {JobState.DONE, JobState.FAILED, JobState.CANCELLED}


def test_recording_duration_comes_from_start_and_end() -> None:
    from datetime import UTC, datetime

    rec = Recording(
        start=datetime(2024, 1, 1, 21, tzinfo=UTC), end=datetime(2024, 1, 1, 21, 30, tzinfo=UTC)
    )
    assert rec.duration_s == 1800
