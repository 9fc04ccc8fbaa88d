"""A real EPGStation 2.7.3 (with Mirakurun and a fake tuner) in front of kamado: its
encode presets run `kamado epgstation encode`, a real worker on a real redis-server
encodes, and the tests drive EPGStation through its HTTP API as its web client does."""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.scheduler.conftest import write_config
from tests.support.epgstation import EpgstationServer, Preset, Programme, running_epgstation
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.workers import running_worker
from worker.broker.registry import JobRecord, Registry

KAMADO = str(Path(sys.executable).with_name("kamado"))
# What the fake tuner's service is airing: EPGStation names its recordings after it.
AIRING = "ニュース/..\\$(id) 'x' \"y\" <z>|*? 　第１話"
PROFILES = (
    '[profiles.slow]\nbackends = ["x264"]\nx264_preset = "slow"\nheight = 1080\n'
    '[profiles.quick]\nbackends = ["x264"]\nx264_preset = "ultrafast"\nheight = 360\n'
)


def kamado_config(directory: Path, broker_url: str, epgstation: str = "", extra: str = "") -> Path:
    """kamado.toml for these tests: a state dir, two x264 profiles, quick progress."""
    return write_config(
        directory / "kamado.toml", broker_url, directory / "state",
        "[scheduler.epgstation]\nbroker_wait = 30\ncancel_wait = 20\n" + epgstation
        + "[encode]\nprogress_interval = 0.5\n" + extra + PROFILES,
    )  # fmt: skip


def preset(name: str, config: Path, profile: str) -> Preset:
    """An encode preset behind which kamado encodes with ``profile``."""
    return Preset(name, f"{KAMADO} epgstation encode --config {config} --profile {profile}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Station:
    """EPGStation with kamado's presets, the job registry kamado keeps, its config."""

    server: EpgstationServer
    registry: Registry
    config: Path

    def place(self, clip: Path, filename: str, seconds: float = 600) -> tuple[int, int, Path]:
        """A recorded entry holding ``clip`` uploaded as ``filename``: ids and path.

        ``seconds`` is the programme's length EPGStation bounds the encode by (x rate)."""
        recorded_id = self.server.new_recorded(Path(filename).stem, seconds)
        video_id = self.server.upload(recorded_id, clip, filename)
        (ts,) = [f for f in self.server.video_files(recorded_id) if f["id"] == video_id]
        return recorded_id, video_id, self.server.recorded_dir / ts["filename"]

    def job_writing(self, output: Path) -> JobRecord:
        (record,) = [r for r in self.registry.list() if r.job.output == str(output)]
        return record

    def settled(self, output: Path, timeout: float = 30) -> JobRecord:
        """The job writing ``output`` once it has ended (a cancel takes a moment)."""
        assert wait_for(
            lambda: any(
                r.job.output == str(output) and r.state.final for r in self.registry.list()
            ),
            timeout,
        ), [(r.job.output, r.state) for r in self.registry.list()]
        return self.job_writing(output)


@pytest.fixture(scope="session")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    """One EPGStation for the session (its tests share an xdist group), a redis-server
    and a worker; kamado's config names the server, for the registration test."""
    directory = tmp_path_factory.mktemp("epgstation")
    redis = RedisProcess(directory / "redis").start()
    port = free_port()
    config = kamado_config(
        directory, redis.url,
        epgstation=f'url = "http://127.0.0.1:{port}"\nregister_retry = 1\n',
        extra=f"[metrics]\nport = {free_port()}\n",
    )  # fmt: skip
    registry = Registry.connect(redis.url)
    presets = [preset("KAMADO", config, "quick"), preset("KAMADO-SLOW", config, "slow")]
    programmes = [airing()]
    try:
        with (
            running_worker(redis.url, directory / "worker", KAMADO_CONFIG=str(config)),
            running_epgstation(
                directory / "server", presets, programmes=programmes, port=port
            ) as server,
        ):
            yield Station(server, registry, config)
    finally:
        registry.close()
        redis.stop()


def airing() -> Programme:
    """A six-hour programme that began a minute ago, named :data:`AIRING`."""
    return Programme(AIRING, int(time.time() * 1000) - 60_000, 6 * 3600_000)


def encoded_files(server: EpgstationServer, recorded_id: int) -> list[dict[str, object]]:
    return [f for f in server.video_files(recorded_id) if f["type"] == "encoded"]


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def copy_clip(clip: Path, directory: Path, name: str) -> Path:
    target = directory / name
    shutil.copy(clip, target)
    return target
