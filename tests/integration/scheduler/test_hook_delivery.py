"""Who delivers what a hook spooled: the service, the one running delivery, or a new one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler.delivery.deliverer import Deliverer, Drained, drain_pass
from scheduler.delivery.locked import deliver
from scheduler.spool import store as spool_store
from scheduler.spool.durable import Spool
from tests.integration.scheduler.conftest import ROOT, Kamado, write_config
from tests.integration.scheduler.test_hooks import epgstation_env, place
from tests.support.procs import wait_for
from tests.support.redis_proc import RedisProcess, free_port
from worker.broker.registry import Registry
from worker.settings.model import load_settings, spool_dir

pytestmark = pytest.mark.integration


def test_a_hook_exits_0_when_the_service_holds_the_spool_and_the_broker_is_only_in_its_env(
    own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    # The deployed layout: the broker URL only in kamado.env, which the unit reads and the
    # recorder's hook does not.
    state = tmp_path / "state"
    config = tmp_path / "kamado.toml"
    config.write_text(f'state_dir = "{state}"\n[scheduler]\nmin_age = 0\nsettle_time = 0\n'
                      f"[metrics]\nport = {free_port()}\n", encoding="utf-8")  # fmt: skip
    kamado = Kamado(config, state, own_redis.url)
    rec = place(tiny_ts, tmp_path, "env-only.ts")
    alone = kamado.run("hook", "epgstation", env=epgstation_env(str(rec)))
    assert alone.returncode == 2
    assert "no scheduler service holds the spool" in alone.stderr
    assert "do not read kamado.env" in alone.stderr
    unit_env = {"PATH": os.environ["PATH"], "KAMADO_BROKER_URL": own_redis.url}
    argv = [sys.executable, "-m", "worker.cli.main", "scheduler", "run", "--config", str(config)]
    service = subprocess.Popen(argv, env=unit_env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for((state / "spool" / ".service.lock").exists, 30)
        assert wait_for(lambda: spool_store.service_running(state / "spool"), 10)
        rec2 = place(tiny_ts, tmp_path, "env-only 2.ts")
        done = kamado.run("hook", "epgstation", env=epgstation_env(str(rec2)))
        assert done.returncode == 0, done.stderr
        assert done.stdout == "spooled the scheduler service delivers it\n"
        registry = Registry.connect(own_redis.url)
        assert wait_for(lambda: len(registry.list()) == 2, 30)  # and the first one's too
        assert {r.job.source for r in registry.list()} == {str(rec), str(rec2)}
    finally:
        service.terminate()
        _, err = service.communicate(timeout=30)
    assert service.returncode == 0, err


def hook(kamado: Kamado, rec: Path) -> subprocess.CompletedProcess[str]:
    done = kamado.run("hook", "epgstation", env=epgstation_env(str(rec)))
    assert done.returncode == 0, done.stderr
    return done


def test_an_entry_spooled_while_the_delivery_ends_its_last_pass_is_delivered_by_it(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    settings = load_settings(kamado.config)
    spool = Spool(spool_dir(settings))
    first, late = place(tiny_ts, tmp_path, "first.ts"), place(tiny_ts, tmp_path, "late.ts")
    passes: list[Drained] = []
    hooked: list[str] = []
    lock = spool_store.try_lock(spool.directory, spool_store.DRAIN_LOCK)
    assert lock is not None
    hooked.append(hook(kamado, first).stdout)  # the lock is ours: the hook leaves it to us

    def run(spool: Spool, deliverer: Deliverer) -> Drained:
        one = drain_pass(spool, deliverer)
        passes.append(one)
        if len(passes) == 1:  # listed and delivered; the lock not yet released
            hooked.append(hook(kamado, late).stdout)
        return one

    deliverer = Deliverer(settings)
    try:
        total = deliver(spool, deliverer, lock, run=run)
    finally:
        deliverer.close()
    assert all("a delivery already running takes it" in out for out in hooked), hooked
    assert [len(p.delivered) for p in passes] == [1, 1]
    assert [d.job.source for d in total.delivered] == [str(first), str(late)]
    assert spool.names() == set() and kamado.deliveries() == []


class ArrivingSpool(Spool):
    """A real spool where a hook runs just after the delivery released its lock."""

    def __init__(self, directory: Path, arrive: object) -> None:
        super().__init__(directory)
        self.arrive = arrive

    def names(self) -> set[str]:
        """Let the hook in first, then look."""
        assert callable(self.arrive)
        self.arrive()
        self.arrive = lambda: None
        return super().names()


def test_an_entry_spooled_just_after_the_delivery_let_go_is_delivered_by_a_new_one(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    settings = load_settings(kamado.config)
    first, late = place(tiny_ts, tmp_path, "a.ts"), place(tiny_ts, tmp_path, "b.ts")
    hooked: list[str] = []
    spool = ArrivingSpool(spool_dir(settings), lambda: hooked.append(hook(kamado, late).stdout))
    lock = spool_store.try_lock(spool.directory, spool_store.DRAIN_LOCK)
    assert lock is not None
    hook(kamado, first)
    deliverer = Deliverer(settings)
    try:
        total = deliver(spool, deliverer, lock)
    finally:
        deliverer.close()
    assert [d.job.source for d in total.delivered] == [str(first)]
    # The lock was free when the late hook looked: it started the delivery that takes it.
    assert hooked == ["spooled delivery started (its outcome goes to hooks.log)\n"]
    kamado.delivered()
    assert {r.job.source for r in registry.list()} == {str(first), str(late)}


def test_thirty_hooks_at_once_with_redis_frozen_leave_one_delivery_and_lose_nothing(
    own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    kamado = Kamado(write_config(tmp_path / "k.toml", own_redis.url, state), state,
                    own_redis.url)  # fmt: skip
    recs = [place(tiny_ts, tmp_path / "rec", f"同時 {n:02d}.ts") for n in range(30)]
    argv = [sys.executable, "-m", "worker.cli.main", "hook", "epgstation",
            "--config", str(kamado.config)]  # fmt: skip
    hook(kamado, place(tiny_ts, tmp_path, "warm.ts"))  # the config validated and cached
    kamado.delivered()
    own_redis.pause()
    hooks = [
        subprocess.Popen(argv, env=epgstation_env(str(rec), RECORDEDID=str(n)), cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n, rec in enumerate(recs)
    ]  # fmt: skip
    most = 0
    while any(h.poll() is None for h in hooks):
        most = max(most, len(kamado.deliveries()))
        time.sleep(0.02)
    outcomes = [h.communicate(timeout=60) for h in hooks]
    assert [h.returncode for h in hooks] == [0] * 30, outcomes
    for _ in range(50):  # the hooks are gone; the delivery is still waiting on Redis
        most = max(most, len(kamado.deliveries()))
        time.sleep(0.02)
    assert most == 1
    assert len(list((state / "spool").glob("*.json"))) == 30
    (delivery,) = kamado.deliveries()
    nice = int(Path(f"/proc/{delivery}/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert nice == 10  # it yields the CPU to the recorder and the next hooks
    own_redis.resume()
    kamado.delivered(timeout=120)
    registry = Registry.connect(own_redis.url)
    assert {r.job.source for r in registry.list()} == {str(r) for r in recs} | {
        str(tmp_path / "warm.ts")
    }
    assert not (state / "spool" / "bad").exists()
