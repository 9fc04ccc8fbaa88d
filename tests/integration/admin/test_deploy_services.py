"""The shipped systemd units pass systemd-analyze verify; the Redis config runs kamado."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.procs import wait_for
from tests.support.redis_proc import REDIS_SERVER, RedisProcess, free_port
from tests.support.workers import environ_without_kamado, running_worker, worker_env
from worker.admin.metrics import serve_metrics
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.encode.sample import make_sample
from worker.jobs import Job
from worker.settings.model import Settings
from worker.submit import submit_job

from .web import get

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("kamado-*.service"))
INSTALLED_KAMADO = "/opt/kamado/venv/bin/kamado"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian: systemd)"
)
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_each_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists. The units name the installed venv,
    # which CI does not have, so a copy points at this test run's own kamado script.
    text = unit.read_text(encoding="utf-8")
    assert f"ExecStart={INSTALLED_KAMADO} " in text
    here = Path(sys.executable).parent / "kamado"
    assert here.is_file(), "the kamado console script is not installed in this venv"
    copy = tmp_path / unit.name
    copy.write_text(text.replace(INSTALLED_KAMADO, str(here)), encoding="utf-8")
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings (exit 0): any output is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert result.stdout.strip() == "", result.stdout


class ConfiguredRedis(RedisProcess):
    """redis-server started from deploy/redis/kamado.conf, on loopback and a temp dir."""

    password = "CHANGE-ME-long-random"

    @property
    def url(self) -> str:
        return f"redis://kamado:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> ConfiguredRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            REDIS_SERVER, str(ROOT / "deploy" / "redis" / "kamado.conf"),
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
            "--daemonize", "no", "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        # The default user is off, so an anonymous PING gets NOAUTH: ask as kamado.
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited: {log}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server on port {self.port} not ready after {timeout}s")


@pytest.fixture
def configured_redis(tmp_path: Path) -> Iterator[ConfiguredRedis]:
    server = ConfiguredRedis(tmp_path / "redis").start()
    yield server
    server.stop()


def test_the_redis_config_keeps_aof_and_noeviction_and_refuses_the_default_user(
    configured_redis: ConfiguredRedis,
) -> None:
    anonymous = redis.Redis(port=configured_redis.port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("kamado:probe", "1")
    anonymous.close()
    admin = redis.Redis(
        port=configured_redis.port,
        username="admin",
        password="CHANGE-ME-admin-password",
        decode_responses=True,
    )
    assert admin.config_get("appendonly") == {"appendonly": "yes"}
    assert admin.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    admin.close()
    kamado = redis.Redis.from_url(configured_redis.url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        kamado.flushall()
    kamado.close()


def test_a_worker_runs_a_job_as_the_acl_user_with_events_and_metrics(
    configured_redis: ConfiguredRedis, tmp_path: Path
) -> None:
    url = configured_redis.url
    source = make_sample(tmp_path / "acl.ts", seconds=1)
    settings = Settings(broker_url=url, state_dir=tmp_path / "client")
    with running_worker(url, tmp_path / "worker") as (app, hostname, _daemon):
        # ping is a pub/sub broadcast: it answers only if the user has channels.
        assert app.control.ping(destination=[hostname], timeout=2)
        registry = Registry.connect(url)
        client = create_app(settings)
        try:
            job = Job.create(str(source), "h264-x264")
            submit_job(client, registry, settings, job)
            assert wait_for(
                lambda: (r := registry.get(job.id)) is not None and r.state.final, 60, 0.2
            )
            record = registry.get(job.id)
            assert record is not None and record.state.value == "done", record
            server = serve_metrics(settings, "127.0.0.1", free_port(), registry=registry)
            try:
                status, body = get(f"http://127.0.0.1:{server.port}/metrics")
            finally:
                server.close()
            assert status == 200
            assert b"kamado_up 1.0" in body
            assert b'kamado_jobs{state="done"} 1.0' in body
        finally:
            client.close()
            registry.close()


@pytest.mark.parametrize(
    "credentials",
    [":CHANGE-ME-long-random", "kamado:not-the-password"],
    ids=["password-only-url", "wrong-password"],
)
def test_a_worker_refused_by_the_acl_fails_its_start_naming_the_url_form(
    configured_redis: ConfiguredRedis, tmp_path: Path, credentials: str
) -> None:
    url = f"redis://{credentials}@127.0.0.1:{configured_redis.port}/0"
    env = environ_without_kamado() | worker_env(url, tmp_path / "state")
    argv = [sys.executable, "-m", "worker.cli.main", "worker", "--queues", "encode.cpu"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "invalid username-password pair" in done.stderr
    assert "redis://kamado:PASSWORD@" in done.stderr
    assert "CHANGE-ME-long-random" not in done.stderr and "not-the-password" not in done.stderr
