"""encode.delete_source: a recording is deleted only in the one allowed case (real files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.encode.source_removal import remove_source, seen_source
from worker.jobs import Job, Recording
from worker.settings.model import Settings


def world(root: Path, *, read_only_source: bool) -> Settings:
    locations = {"rec": {"kind": "local", "path": str(root / "rec"), "writable": False}}
    return Settings(
        state_dir=root / "state",
        encode={"delete_source": "after_verified", "output_dir": str(root / "out")},
        staging={"locations": locations if read_only_source else {}},
    )


# Each condition that must keep the recording; an example breaks none, one or two.
BREAKS = [
    "disabled", "not done", "no metadata", "failed", "drops unknown", "drops", "errors",
    "scrambled", "flagged", "output missing", "output empty", "output is the source",
    "changed", "read-only location",
]  # fmt: skip
UNKNOWN_OR_ZERO = st.sampled_from([None, 0])


@pytest.mark.parametrize("first", [None, *BREAKS])
@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    more=st.lists(st.sampled_from(BREAKS), max_size=1),
    count=st.integers(min_value=1, max_value=10_000),
    errors=UNKNOWN_OR_ZERO,
    scrambled=UNKNOWN_OR_ZERO,
)
def test_a_recording_is_deleted_exactly_when_no_condition_is_broken(
    tmp_path_factory: pytest.TempPathFactory,
    first: str | None,
    more: list[str],
    count: int,
    errors: int | None,
    scrambled: int | None,
) -> None:
    broken = sorted({*([first] if first else []), *(more if first else [])})
    root = tmp_path_factory.mktemp("del")
    (root / "rec").mkdir()
    (root / "out").mkdir()
    source = root / "rec" / "番組.ts"
    source.write_bytes(b"\x47" * 188 * 10)
    conf = world(root, read_only_source="read-only location" in broken)
    if "disabled" in broken:
        conf = conf.model_copy(
            update={"encode": conf.encode.model_copy(update={"delete_source": "never"})}
        )
    recording = Recording(
        drop_count=None if "drops unknown" in broken else count if "drops" in broken else 0,
        error_count=count if "errors" in broken else errors,
        scrambling_count=count if "scrambled" in broken else scrambled,
        failed="failed" in broken,
    )
    job = Job.create(
        str(source),
        "h264-x264",
        output_dir=root / "out",
        recording=None if "no metadata" in broken else recording,
    )
    seen = seen_source(conf, job)
    target = Path(job.output)
    if "output is the source" in broken:
        os.link(source, target)
    elif "output empty" in broken:
        target.write_bytes(b"")
    elif "output missing" not in broken:
        target.write_bytes(b"an mp4")
    if "changed" in broken:  # the recorder was still writing, or the file was replaced
        with source.open("ab") as fh:
            fh.write(b"\x47" * 188)
    flags = ["recorder: 録画失敗"] if "flagged" in broken else []
    output_there = target.exists()
    deleted = remove_source(conf, job, seen, done="not done" not in broken, flags=lambda: flags)
    assert deleted == (not broken), broken
    assert source.exists() == bool(broken)
    assert target.exists() == output_there, "the output is never touched"


def test_a_recording_reached_over_sftp_is_never_deleted(tmp_path: Path) -> None:
    conf = Settings(state_dir=tmp_path, encode={"delete_source": "after_verified"})
    clean = Recording(drop_count=0, error_count=0, scrambling_count=0)
    out = tmp_path / "a.mp4"
    out.write_bytes(b"an mp4")
    job = Job.create("sftp://recorder/rec/a.ts", "h264-x264", output=str(out), recording=clean)
    assert seen_source(conf, job) is None
    assert remove_source(conf, job, None, done=True) is False


def test_flags_that_cannot_be_read_keep_the_recording(tmp_path: Path) -> None:
    from worker.errors import BrokerError

    conf = world(tmp_path, read_only_source=False)
    (tmp_path / "rec").mkdir()
    (tmp_path / "out").mkdir()
    source = tmp_path / "rec" / "a.ts"
    source.write_bytes(b"ts")
    clean = Recording(drop_count=0, error_count=0, scrambling_count=0)
    job = Job.create(str(source), "h264-x264", output_dir=tmp_path / "out", recording=clean)
    Path(job.output).write_bytes(b"an mp4")

    def unreachable() -> list[str]:
        raise BrokerError("job registry: cannot read flags: connection refused")

    seen = seen_source(conf, job)
    assert remove_source(conf, job, seen, done=True, flags=unreachable) is False
    assert source.exists()
    assert remove_source(conf, job, seen, done=True) is True  # the control: it could go
    assert not source.exists()
