"""Properties of remote outputs over generated names, against a real sshd and redis-server.

For any output name (Unicode, up to 255 bytes), source and output with equal stems, and
files already in the remote directory: the source's bytes stay as they were, every file
kamado did not write stays as it was, a job ends with at most one new file, and that file
is byte for byte the verified one. The encode is left out (a random file stands for the
verified output) so that many names can be tried; test_remote_output_checks.py runs the
same delivery after a real ffmpeg encode.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.staging.conftest import make_settings
from tests.support.redis_proc import RedisProcess
from tests.support.sshd import SshdProcess
from worker.broker.claims import Claims
from worker.broker.registry import Registry
from worker.encode.pipeline import Attempt
from worker.encode.remote_output import prepare_remote
from worker.errors import OutputRefused
from worker.jobs import Job
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

MAX_NAME = 255
counter = itertools.count()


def fits(stem: str, suffix: str) -> bool:
    return len((stem + suffix).encode()) <= MAX_NAME


# Any Unicode a file name can hold (no /, NUL or surrogates), up to the 255-byte limit
# with the longest suffix used below; and names right at that limit.
ROOM = MAX_NAME - len(".m2ts")
short_stems = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=60
)
long_stems = st.tuples(st.sampled_from(["長", "a", "é", "🎬", " "]), st.integers(1, 3)).map(
    lambda t: "x" * t[1] + t[0] * ((ROOM - t[1]) // len(t[0].encode()))
)
stems = st.one_of(short_stems, long_stems).filter(
    lambda s: not s.startswith(".") and len(s.encode()) <= ROOM
)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The remote root and a local scratch, shared by every example."""
    return tmp_path_factory.mktemp("props")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stem=stems,
    source_suffix=st.sampled_from([".ts", ".m2ts", ".mp4"]),
    existing=st.lists(st.sampled_from(["", " (2)", " (3)", "-other"]), unique=True, max_size=3),
    with_claims=st.booleans(),
    pair=st.booleans(),
)
def test_remote_delivery_never_harms_a_file_and_commits_the_verified_bytes(
    sshd: SshdProcess,
    redis_server: RedisProcess,
    place: Path,
    stem: str,
    source_suffix: str,
    existing: list[str],
    with_claims: bool,
    pair: bool,
) -> None:
    n = next(counter)
    remote = place / "remote" / f"ex{n}"
    remote.mkdir(parents=True)
    source_name = stem + source_suffix
    (remote / source_name).write_bytes(os.urandom(3000))
    for tail in existing:
        name = f"{stem}{tail}.mp4"
        if name != source_name and len(name.encode()) <= MAX_NAME:
            (remote / name).write_bytes(b"not kamado's: " + os.urandom(100))
    sources = [source_name]
    if pair:  # a second recording with the same stem: both default to one output name
        sources.append(stem + (".ts" if source_suffix != ".ts" else ".m2ts"))
        (remote / sources[1]).write_bytes(os.urandom(2000))
    before = snapshot(remote)
    staging = make_settings(sshd, place / "remote", place / f"scratch-{n}")
    worker = Settings(state_dir=place / "state", staging=staging.model_dump())
    claims = Claims(Registry.connect(redis_server.url)) if with_claims else None

    outputs: list[str] = []
    for k, name in enumerate(sources):
        data = os.urandom(20_000 + n + k)
        verified = place / f"verified-{n}-{k}.mp4"
        verified.write_bytes(data)
        seen = snapshot(remote)
        job = Job.create(f"sftp://rec/ex{n}/{name}", "h264-x264")
        attempt = Attempt(settings=worker, backends=[], claims=claims, attempt_id=f"a{n}k{k}")
        try:
            with prepare_remote(job, attempt) as remote_output:
                remote_output.deliver(
                    verified,
                    sha256=hashlib.sha256(data).hexdigest(),
                    before_commit=lambda: None,
                    result={},
                )
                delivered = remote_output.output.rsplit("/", 1)[1]
        except OutputRefused as e:
            delivered = None
            event(f"refused: {type(e).__name__}")
        after = snapshot(remote)
        new = sorted(set(after) - set(seen))
        if delivered is None:
            assert new == [], "a refused job writes nothing"
            assert name.endswith(".mp4") or claims is None, "only the source itself is refused"
        else:
            assert new == [delivered], "one output per job, under the name it reports"
            assert after[delivered] == data, "the committed file is the verified file"
            assert len(delivered.encode()) <= MAX_NAME
            outputs.append(delivered)
            event("renamed" if delivered != f"{stem}.mp4" else "delivered as named")

    after = snapshot(remote)
    for name, content in before.items():
        assert after.get(name) == content, f"{name!r} (a source or not kamado's) was changed"
    assert len(set(outputs)) == len(outputs), "two jobs never share an output"
