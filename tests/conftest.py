"""Fixtures every test folder may use: a real redis-server per session and per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.media import Clips, make_clips
from tests.support.redis_proc import RedisProcess


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A real redis-server (AOF on) shared by the session; flush it if a test needs it empty."""
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A real redis-server for one test, which the test may kill, restart or pause."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.resume() if server.proc and server.proc.poll() is None else None
    server.stop()


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """Broadcast-like and broken recordings made by real ffmpeg, once per session."""
    return make_clips(tmp_path_factory.mktemp("clips"))
