"""The spool: hooks keep every recording while the broker is down, and deliver it in order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler.queues import BrokerState
from scheduler.spool.durable import Spool
from tests.integration.scheduler.conftest import ROOT, Kamado, write_config
from tests.integration.scheduler.test_hooks import epgstation_env, place
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess, free_port
from worker.broker.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture
def down(own_redis: RedisProcess, tmp_path: Path) -> Kamado:
    """The CLI configured for a broker of its own, which the test stops.

    A hook's delivery retries an absent broker for one second, not the default minute, so
    it has given up and left its entry in the spool by the time the test looks.
    """
    state = tmp_path / "state"
    config = write_config(tmp_path / "kamado.toml", own_redis.url, state, "delivery_retry = 1\n")
    return Kamado(config, state, own_redis.url)


def hook(kamado: Kamado, rec: Path, recorded_id: str) -> dict[str, str]:
    done = kamado.run(
        "hook", "epgstation", "--json", env=epgstation_env(str(rec), RECORDEDID=recorded_id)
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def job_ids(registry: Registry, recs: list[Path]) -> list[str]:
    """The registry's job ids, oldest first, after checking they are these recordings'."""
    order = registry.client.zrange("kamado:jobs", 0, -1)
    records = [registry.get(job_id) for job_id in order]
    assert [r.job.source if r else None for r in records] == [str(r) for r in recs]
    return list(order)


def test_hook_spools_while_the_broker_is_down_and_the_next_hook_delivers_in_order(
    down: Kamado, own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    recs = [place(tiny_ts, tmp_path / "rec", f"番組 {i}.ts") for i in range(3)]
    own_redis.kill()
    first = hook(down, recs[0], "1")
    second = hook(down, recs[1], "2")
    assert first["action"] == second["action"] == "spooled"
    down.settle()  # both deliveries found the broker away
    spooled = down.json("spool", "list")
    assert [s["recorder_path"] for s in spooled] == [str(recs[0]), str(recs[1])]
    assert [s["kind"] for s in spooled] == ["hook", "hook"]
    log = (down.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert "spool: 2 waiting, the broker is away" in log
    own_redis.start()
    assert hook(down, recs[2], "3")["action"] == "spooled"
    down.delivered()  # the third hook's delivery takes all three, oldest first
    assert down.json("spool", "list") == []
    registry = Registry.connect(own_redis.url)
    order = job_ids(registry, recs)
    waiting = BrokerState(registry).waiting("encode.gpu")
    assert [m.job_id for m in waiting] == order
    log = (down.state_dir / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert [line.split()[3] for line in log.splitlines() if ": submitted " in line] == order


def test_spool_flush_delivers_and_fails_clearly_while_the_broker_is_away(
    down: Kamado, own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path, "a.ts")
    own_redis.kill()
    hook(down, rec, "9")
    down.settle()  # the hook's own delivery found the broker away and let go of the spool
    failed = down.run("spool", "flush")
    assert failed.returncode == 1
    assert "the broker is away" in failed.stderr
    own_redis.start()
    flushed = down.json("spool", "flush")
    registry = Registry.connect(own_redis.url)
    assert [d["id"] for d in flushed["delivered"]] == job_ids(registry, [rec])


def test_unreadable_spool_files_are_set_aside_not_blocking_the_others(
    down: Kamado, own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    own_redis.kill()
    rec = place(tiny_ts, tmp_path, "b.ts")
    hook(down, rec, "5")
    down.settle()
    (down.state_dir / "spool" / "00000000000000000001-broken.json").write_text("{oops")
    own_redis.start()
    flushed = down.json("spool", "flush")
    assert flushed["quarantined"] == 1
    registry = Registry.connect(own_redis.url)
    assert [d["id"] for d in flushed["delivered"]] == job_ids(registry, [rec])
    assert (down.state_dir / "spool" / "bad" / "00000000000000000001-broken.json").exists()


def test_scheduler_service_drains_the_spool_when_the_broker_returns(
    down: Kamado, own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    argv = [
        sys.executable,
        "-m",
        "worker.cli.main",
        "scheduler",
        "run",
        "--config",
        str(down.config),
    ]
    # Its metrics on a port of its own: the other test process may run a service too.
    env = {"PATH": os.environ["PATH"], "KAMADO_METRICS__PORT": str(free_port())}
    service = subprocess.Popen(argv, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        spool_lock = down.state_dir / "spool" / ".service.lock"
        assert wait_for(spool_lock.exists, 20)
        own_redis.kill()
        rec = place(tiny_ts, tmp_path, "c.ts")
        spooled = hook(down, rec, "7")
        assert spooled["detail"] == "the scheduler service delivers it"
        assert down.deliveries() == []  # the hook started no delivery of its own
        time.sleep(1.0)
        assert len(down.json("spool", "list")) == 1
        own_redis.start()
        registry = Registry.connect(own_redis.url)
        assert wait_for(lambda: len(registry.list()) == 1, 20)
        assert wait_for(lambda: down.json("spool", "list") == [], 5)
        job_ids(registry, [rec])
    finally:
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=20)
    assert service.returncode == 0, err


def test_a_process_killed_mid_write_leaves_no_partial_entry(tmp_path: Path) -> None:
    # A writer killed at any point leaves either a whole entry or only a hidden temp file.
    code = (
        "import sys; from scheduler.spool.durable import Spool; from tests.unit.scheduler."
        "test_spool_files import sub\nfor i in range(100000): Spool(__import__('pathlib')."
        f"Path({str(tmp_path)!r})).put(sub(str(i)))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[3])
    # Kill it mid-stream: once it has written some entries (its start-up is slow under load).
    assert wait_for(lambda: len(list(tmp_path.glob("*.json"))) >= 20, 60), (
        "the writer wrote nothing"
    )
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    entries = Spool(tmp_path).entries()
    assert entries
    assert all(e.submission is not None for e in entries)
