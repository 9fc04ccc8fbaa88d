"""Output claims on a real redis-server: one output per job, distinct, never a foreign file.

The contract functions run here without ffmpeg, so hypothesis can try many worlds: random
Unicode names up to 255 bytes, equal stems in different directories, several profiles of
one recording, files already at the output paths, symlinked and `..` spellings.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.redis_proc import RedisProcess
from worker.broker.claims import Claims
from worker.broker.registry import Registry
from worker.encode.output_contract import check_submission, check_task
from worker.errors import BadInputError, OutputConflict, OutputRefused
from worker.jobs import Job
from worker.outputs.names import MAX_NAME_BYTES
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
# Stems up to the longest a ".ts" recording can have, so outputs up to 255 bytes and over.
STEMS = (
    st.text(NAME_CHARS, min_size=1, max_size=252)
    .filter(lambda s: s not in (".", "..") and len(s.encode()) <= 252)
    .map(lambda s: s.lstrip("."))
    .filter(bool)
)
PROFILES = ["h264-x264", "h264-auto", "h264-intel"]
WORLD = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def registry(redis_server: RedisProcess) -> Iterator[Registry]:
    registry = Registry.connect(redis_server.url)
    yield registry
    registry.close()


def world(tmp_path: Path) -> Path:
    """A fresh directory per example (claims are keyed by real paths, so they never mix)."""
    root = tmp_path / secrets.token_hex(6)
    root.mkdir()
    return root


@WORLD
@given(
    stems=st.lists(STEMS, min_size=1, max_size=4),
    dirs=st.integers(min_value=1, max_value=3),
    profiles=st.lists(st.sampled_from(PROFILES), min_size=1, max_size=3, unique=True),
    foreign=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), max_size=4),
)
def test_every_job_gets_its_own_output_and_no_foreign_file_is_taken(
    registry: Registry,
    tmp_path: Path,
    stems: list[str],
    dirs: int,
    profiles: list[str],
    foreign: list[tuple[int, int]],
) -> None:
    root = world(tmp_path)
    out = root / "enc"
    out.mkdir()
    settings_ = Settings(encode={"output_dir": str(out)})
    sources = []
    for d, stem in itertools.product(range(dirs), stems):
        (root / f"rec{d}").mkdir(exist_ok=True)
        source = root / f"rec{d}" / f"{stem}.ts"
        source.write_bytes(b"G" * 188)
        sources.append(source)
    # Files the user put where kamado would write (`x.mp4`, `x (2).mp4`...).
    first = [Job.create(str(s), PROFILES[0], output_dir=out) for s in sources]
    planted: dict[Path, bytes] = {}
    for index, n in foreign:
        base = Path(first[index % len(first)].output)
        name = base.name if n == 1 else f"{base.stem} ({n}).mp4"
        if len(name.encode()) <= MAX_NAME_BYTES:
            planted[out / name] = f"mine {index} {n}".encode()
    for path, data in planted.items():
        path.write_bytes(data)
    claims = Claims(registry)
    outputs: dict[str, str] = {}
    for d in range(dirs):
        (root / f"alias{d}").symlink_to(root / f"rec{d}", target_is_directory=True)
    for source, profile in itertools.product(sources, profiles):
        job = check_submission(settings_, claims, Job.create(str(source), profile, output_dir=out))
        d = source.parent.name.removeprefix("rec")
        for spelling in (
            str(source),  # a resubmission
            str(root / f"alias{d}" / source.name),  # through a symlinked directory
            f"{root}/rec{d}/../rec{d}/{source.name}",  # a '..' spelling
        ):
            again = Job.create(spelling, profile, output_dir=out)
            again = check_submission(settings_, claims, again)
            assert (again.id, again.output) == (job.id, job.output), "one file, one job, one output"
        outputs[job.id] = job.output
    assert len(outputs) == len(set(sources)) * len(profiles)
    assert len(set(outputs.values())) == len(outputs), "two jobs share an output"
    for output in outputs.values():
        path = Path(output)
        assert path.parent == out
        assert path.name.endswith(".mp4") and len(path.name.encode()) <= MAX_NAME_BYTES
        assert path not in planted, "an output was given a file kamado did not write"
    assert {p: p.read_bytes() for p in planted} == planted
    assert all(s.read_bytes() == b"G" * 188 for s in sources)


@WORLD
@given(stem=STEMS)
def test_with_refuse_a_second_job_on_a_taken_output_fails_naming_both_sources(
    registry: Registry, tmp_path: Path, stem: str
) -> None:
    root = world(tmp_path)
    out = root / "enc"
    for d in "ab":
        (root / d).mkdir()
        (root / d / f"{stem}.ts").write_bytes(b"G" * 188)
    out.mkdir()
    settings_ = Settings(encode={"output_dir": str(out), "on_conflict": "refuse"})
    claims = Claims(registry)
    a = Job.create(str(root / "a" / f"{stem}.ts"), "h264-x264", output_dir=out)
    b = Job.create(str(root / "b" / f"{stem}.ts"), "h264-x264", output_dir=out)
    assert check_submission(settings_, claims, a).output == a.output
    with pytest.raises(OutputConflict) as refused:
        check_submission(settings_, claims, b)
    assert a.source in str(refused.value) and b.source in str(refused.value)


def test_an_output_dir_symlinked_to_the_source_dir_or_a_dotdot_source_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    root = world(tmp_path)
    (root / "videos" / "x").mkdir(parents=True)
    show = root / "videos" / "show.mp4"
    show.write_bytes(b"the only copy")
    (root / "enc").symlink_to(root / "videos", target_is_directory=True)
    claims = Claims(registry)
    settings_ = Settings(encode={"output_dir": str(root / "enc")})
    for spelling in (str(show), f"{root}/videos/x/../show.mp4"):
        job = Job.create(spelling, "h264-x264", output_dir=root / "enc")
        with pytest.raises(OutputRefused, match="would overwrite the source"):
            check_submission(settings_, claims, job)
        with pytest.raises(OutputRefused, match="would overwrite the source"):
            check_task(settings_, claims, job)
    assert show.read_bytes() == b"the only copy"


def test_a_task_whose_output_is_another_recording_or_outside_the_allowed_places_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    root = world(tmp_path)
    (root / "rec").mkdir()
    (root / "enc").mkdir()
    (root / "etc").mkdir()
    recording = root / "enc" / "keep.mp4"  # a recording inside the allowed place
    recording.write_bytes(b"a recording given as a source")
    other = root / "rec" / "new.ts"
    other.write_bytes(b"G" * 188)
    settings_ = Settings(encode={"output_dir": str(root / "enc")})
    claims = Claims(registry)
    given = Job.create(str(recording), "h264-x264", output=str(root / "rec" / "keep-enc.mp4"))
    check_submission(settings_, claims, given)  # kamado now knows keep.mp4 as a recording
    crafted = Job.create(str(other), "h264-x264", output=str(recording))
    with pytest.raises(OutputRefused, match="is the recording of job"):
        check_task(settings_, claims, crafted)
    outside = Job.create(str(other), "h264-x264", output=str(root / "etc" / "x.mp4"))
    with pytest.raises(OutputRefused, match="outside the places outputs may go"):
        check_task(settings_, claims, outside)
    config = Job.create(str(other), "h264-x264", output=str(root / "etc" / "kamado.toml"))
    with pytest.raises(OutputRefused, match=r"must be an \.mp4 file"):
        check_task(settings_, claims, config)
    assert recording.read_bytes() == b"a recording given as a source"


def test_a_read_only_local_location_is_never_an_output_place(
    registry: Registry, tmp_path: Path
) -> None:
    root = world(tmp_path)
    (root / "rec").mkdir()
    source = root / "rec" / "a.ts"
    source.write_bytes(b"G" * 188)
    settings_ = Settings(
        staging={
            "locations": {"nas": {"kind": "local", "path": str(root / "rec"), "writable": False}}
        }
    )
    job = Job.create(str(source), "h264-x264")
    with pytest.raises(OutputRefused, match="location 'nas' has writable = false"):
        check_submission(settings_, Claims(registry), job)
    with pytest.raises(OutputRefused, match="location 'nas' has writable = false"):
        check_task(settings_, Claims(registry), job)


def test_a_fifo_source_is_refused_at_submission_without_blocking(
    registry: Registry, tmp_path: Path
) -> None:
    root = world(tmp_path)
    fifo = root / "live.ts"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match="is a FIFO"):
        check_submission(Settings(), Claims(registry), Job.create(str(fifo), "h264-x264"))


def test_a_submitter_that_does_not_know_the_workers_locations_leaves_them_to_the_worker(
    registry: Registry, tmp_path: Path
) -> None:
    name = secrets.token_hex(4)
    job = Job.create(f"sftp://recorder/{name}.ts", "h264-x264")
    claimed = check_submission(Settings(), Claims(registry), job)
    assert claimed.output == f"sftp://recorder/{name}.mp4"
    assert Claims(registry).owner(f"sftp://recorder/{name}.mp4") == job.id
