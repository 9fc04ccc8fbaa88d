"""`kamado flower` as a real process on a real redis-server, watching a real worker."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.integration.admin.web import get, get_json, wait_until_up
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.workers import client_settings, environ_without_kamado, running_worker
from worker import process
from worker.admin.task_view import describe_args
from worker.broker.registry import Registry
from worker.encode.sample import make_sample
from worker.jobs import Job, JobState
from worker.submit import submit_job

pytestmark = pytest.mark.integration

USER, PASSWORD = "admin", "s3cret:with-colon"


def start_flower(broker_url: str, state_dir: Path, port: int, **env: str) -> process.Daemon:
    """`kamado flower` as a subprocess, as systemd would run it."""
    argv = [
        sys.executable, "-m", "worker.cli.main", "flower",
        "--address", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    environ = environ_without_kamado()
    environ.update(
        {"KAMADO_BROKER_URL": broker_url, "KAMADO_STATE_DIR": str(state_dir), "KAMADO_CONFIG": ""}
    )
    environ.update(env)
    return process.Daemon(argv, env=environ, log=state_dir / f"flower-{port}.log")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("flower-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def flower(
    broker: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    state = tmp_path_factory.mktemp("flower-state")
    port = free_port()
    daemon = start_flower(
        broker.url,
        state,
        port,
        KAMADO_FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}",
        KAMADO_FLOWER__PERSISTENT="true",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthcheck", 30, daemon.alive)
        yield base, state
    finally:
        daemon.stop(grace=10)


@pytest.fixture(scope="module")
def worker(
    broker: RedisProcess, flower: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Celery, str]]:
    state = tmp_path_factory.mktemp("worker-state")
    with running_worker(broker.url, state) as (app, hostname, _daemon):
        yield app, hostname


def test_flower_refuses_to_start_without_credentials_on_a_configured_broker(
    broker: RedisProcess, tmp_path: Path
) -> None:
    daemon = start_flower(broker.url, tmp_path, free_port())
    assert wait_for(lambda: not daemon.alive(), 20)
    assert daemon.returncode == 2
    assert "refusing to start without authentication" in daemon.log_tail(5)


def test_the_api_answers_401_without_credentials_or_with_wrong_ones(
    flower: tuple[str, Path],
) -> None:
    base, _ = flower
    assert get(f"{base}/api/workers")[0] == 401
    assert get(f"{base}/api/tasks", auth=(USER, "wrong"))[0] == 401
    assert get(f"{base}/", auth=None)[0] == 401
    assert get(f"{base}/healthcheck")[0] == 200  # Flower exempts it, by design


def test_api_lists_the_worker_and_the_queues_it_consumes(
    flower: tuple[str, Path], worker: tuple[Celery, str]
) -> None:
    base, _ = flower
    _, hostname = worker
    found: dict[str, Any] = {}

    def listed() -> bool:
        found.update(get_json(f"{base}/api/workers?refresh=1", auth=(USER, PASSWORD)))
        return hostname in found

    assert wait_for(listed, 30, interval=0.5), f"workers seen: {list(found)}"
    queues = {q["name"] for q in found[hostname]["active_queues"]}
    assert queues == {"encode.gpu", "encode.cpu", f"{hostname}.dq2"}  # its own: live jobs
    # Flower's inspect calls run with kamado's transport options (the visibility timeout).
    assert found[hostname]["conf"]["broker_transport_options"]["visibility_timeout"] == 36_000


def test_a_finished_job_shows_in_the_api_with_job_id_file_profile_and_state(
    flower: tuple[str, Path], worker: tuple[Celery, str], tmp_path: Path
) -> None:
    base, _ = flower
    app, hostname = worker
    auth = (USER, PASSWORD)
    # Flower builds tasks from events: wait until it has seen this worker's heartbeats.
    assert wait_for(
        lambda: get_json(f"{base}/api/workers?status=true", auth).get(hostname) is True,
        30,
        interval=0.3,
    )
    source = make_sample(tmp_path / "ニュース 'final'.ts", seconds=2)
    settings = client_settings(str(app.conf.broker_url), tmp_path / "client")
    registry = Registry.connect(str(app.conf.broker_url))
    job = Job.create(str(source), "h264-x264")
    try:
        submitted = submit_job(app, registry, settings, job)
        assert wait_for(
            lambda: (r := registry.get(job.id)) is not None and r.state.final, 90, interval=0.2
        )
        record = registry.get(job.id)
        assert record is not None and record.state is JobState.DONE, record
    finally:
        registry.close()
    task_id = submitted.task_id
    assert task_id is not None and task_id.startswith(job.id)

    def seen() -> dict[str, Any] | None:
        tasks = get_json(f"{base}/api/tasks?limit=50", auth)
        task: dict[str, Any] | None = tasks.get(task_id)
        return task if task and task.get("state") == "SUCCESS" else None

    assert wait_for(seen, 20, interval=0.3)
    task = seen()
    assert task is not None
    assert task["name"] == "kamado.encode"
    assert task["worker"] == hostname
    args = str(task["args"])  # the producer's repr of the Job payload
    assert job.id in args
    assert "h264-x264" in args
    # The tasks page shows it through kamado's format_task hook, quotes and all.
    assert describe_args(args) == f"ニュース 'final'.ts · h264-x264 · job {job.id}"
    info = get_json(f"{base}/api/task/info/{task_id}", auth)
    assert info["state"] == "SUCCESS"
    page = get_json(
        f"{base}/tasks/datatable?draw=1&start=0&length=20&search%5Bvalue%5D=&"
        "order%5B0%5D%5Bcolumn%5D=0&columns%5B0%5D%5Bdata%5D=received&order%5B0%5D%5Bdir%5D=desc",
        auth,
    )
    rows = {row["uuid"]: row for row in page["data"]}
    assert rows[task_id]["args"] == f"ニュース 'final'.ts · h264-x264 · job {job.id}"
    assert rows[task_id]["result"].startswith("done · x264 · "), rows[task_id]["result"]
    # Flower's runtime histogram has buckets for hours-long encodes.
    status, metrics = get(f"{base}/metrics")
    assert status == 200
    assert b'flower_task_runtime_seconds_bucket{le="28800.0",task="kamado.encode"' in metrics


def test_persistent_flower_keeps_its_state_under_the_state_dir(flower: tuple[str, Path]) -> None:
    _, state = flower
    # Flower opens its shelve at start; a dbm backend may add a suffix to the name.
    assert any((state / "flower").glob("flower.db*"))


def test_one_box_flower_on_loopback_starts_without_credentials_but_keeps_the_api_closed(
    tmp_path: Path,
) -> None:
    port = free_port()
    environ = environ_without_kamado()
    environ.update({"KAMADO_STATE_DIR": str(tmp_path / "s"), "KAMADO_CONFIG": ""})
    argv = [
        sys.executable, "-m", "worker.cli.main", "flower",
        "--address", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    daemon = process.Daemon(argv, env=environ, log=tmp_path / "flower.log")
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthcheck", 30, daemon.alive)
        assert get(f"http://127.0.0.1:{port}/api/workers")[0] == 401
        time.sleep(0.2)
        assert "without authentication" in daemon.log_tail(40)
    finally:
        daemon.stop(grace=5)
