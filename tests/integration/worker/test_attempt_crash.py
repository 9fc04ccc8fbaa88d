"""An exception kamado did not expect ends the attempt at once, with a failure naming it.

The attempt runs in this process on a real redis-server and a real Celery app; the one
injected fault is the source-staging hook raising an OSError (as a scratch disk failing
under the prefetcher would), since no real path through kamado is left that raises one.
"""

from __future__ import annotations

import errno
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.support.media import Clips, sha256
from tests.support.redis_proc import RedisProcess
from worker.admin.notify import Notifier
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.errors import JobFailed
from worker.jobs import ENCODE_TASK, Job, JobState
from worker.runtime.tasks import register_tasks, run_attempt
from worker.settings.model import Settings
from worker.staging.api import StagedSource
from worker.submit import submit_job

pytestmark = pytest.mark.integration


def failing_disk(uri: str) -> AbstractContextManager[StagedSource]:
    raise OSError(errno.EIO, "Input/output error", uri)


@pytest.fixture
def registry(redis_server: RedisProcess) -> Iterator[Registry]:
    registry = Registry.connect(redis_server.url, lease_ttl=60, max_attempts=1)
    yield registry
    registry.close()


def test_an_unexpected_oserror_fails_the_attempt_at_once_naming_it(
    redis_server: RedisProcess, registry: Registry, clips: Clips, tmp_path: Path
) -> None:
    settings = Settings(
        broker_url=redis_server.url,
        state_dir=tmp_path / "state",
        jobs={"lease_ttl": 60, "max_attempts": 1},
        worker={"backends": ["x264"]},
    )
    app = create_app(settings)
    register_tasks(app, settings)  # as the worker service does
    source = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "crash.ts"))
    digest = sha256(source)
    job = submit_job(app, registry, settings, Job.create(str(source), "h264-x264")).job
    started = time.monotonic()
    with pytest.raises(JobFailed, match=r"unexpected OSError: \[Errno 5\] Input/output error"):
        run_attempt(
            app.tasks[ENCODE_TASK], app, settings, registry, job,
            Notifier(settings.notify), stage_source=failing_disk,
        )  # fmt: skip
    assert time.monotonic() - started < 10  # the 60 s lease did not have to run out
    record = registry.get(job.id, with_history=True)
    assert record is not None and record.state is JobState.FAILED
    assert "unexpected OSError" in (record.error or "")
    assert not registry.lease_alive(job.id)
    assert [a.outcome for a in record.history] == ["failed"]
    assert sha256(source) == digest
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["crash.ts"]
    app.close()
