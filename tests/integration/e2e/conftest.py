"""Recorder, broker and worker as three hosts in network namespaces the test makes.

    recorder 10.213.1.1 ── 10.213.1.2 worker      (SFTP: the recording and its output)
    broker   10.213.2.1 ── 10.213.2.2 worker      (Redis: Celery and the job registry)
    broker   10.213.3.1 ── 10.213.3.2 recorder    (Redis: the hook's submission)

The recorder runs OpenSSH's sshd and the hook, the broker redis-server (with a
password), the worker a real `kamado worker` on x264. Every address lives only in
these namespaces; the test itself reads the registry through Redis's unix socket.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.integration.prefetch.remote_worker import sftp_location, toml_value, write_worker_config
from tests.support.netns import Netns, netns_problem
from tests.support.redis_proc import REDIS_SERVER
from tests.support.sshd import SSHD, SshdProcess, require_sshd
from worker import process
from worker.broker.registry import Registry

RECORDER, BROKER, WORKER = "recorder", "broker", "worker"
REC_TO_WORKER, WORKER_TO_REC = "10.213.1.1", "10.213.1.2"
BROKER_TO_WORKER, WORKER_TO_BROKER = "10.213.2.1", "10.213.2.2"
BROKER_TO_REC, REC_TO_BROKER = "10.213.3.1", "10.213.3.2"
SSH_PORT, REDIS_PORT = 22, 6379


@dataclass
class Cluster:
    """The three hosts, their processes and the directories they share with the test."""

    net: Netns
    recorded: Path  # EPGStation's recorded/ directory on the recorder
    scratch: Path  # the worker's scratch
    recorder_config: Path
    worker_log: Path
    registry: Registry
    worker: process.Daemon
    sshd: SshdProcess

    def worker_alive(self) -> bool:
        """True while `kamado worker` runs."""
        return self.worker.alive()


def start_redis(net: Netns, directory: Path, password: str) -> subprocess.Popen[bytes]:
    """redis-server in the broker namespace, on both links and a unix socket for the test."""
    directory.mkdir(parents=True)
    argv = [
        REDIS_SERVER, "--bind", BROKER_TO_WORKER, BROKER_TO_REC, "--port", str(REDIS_PORT),
        "--unixsocket", str(directory / "redis.sock"), "--unixsocketperm", "700",
        "--requirepass", password, "--dir", str(directory), "--appendonly", "yes",
        "--appendfsync", "always", "--save", "", "--daemonize", "no",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    return subprocess.Popen(net.argv(BROKER, argv), stdout=subprocess.DEVNULL)


def start_sshd(net: Netns, directory: Path) -> SshdProcess:
    """OpenSSH's sshd in the recorder namespace, listening on its link to the worker."""
    server = SshdProcess(directory, SSH_PORT, address=REC_TO_WORKER).prepare()
    with server.log.open("ab") as log:
        # `ip netns exec` execs sshd itself, so the pid is sshd's and stop() works.
        server.proc = subprocess.Popen(
            net.argv(RECORDER, [SSHD, "-D", "-e", "-f", str(server.config)]),
            stdout=log,
            stderr=log,
        )
    net.wait_tcp(WORKER, REC_TO_WORKER, SSH_PORT)
    return server


def wait_redis(client: redis.Redis, timeout: float = 15.0) -> None:
    """Block until redis-server answers on its unix socket."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The three hosts up, with a worker waiting for work; everything removed after."""
    why = netns_problem()
    if why:
        pytest.skip(f"network namespaces are not available: {why}")
    require_sshd()
    base = tmp_path_factory.mktemp("e2e")
    password = secrets.token_hex(16)
    net = Netns()
    procs: list[subprocess.Popen[bytes]] = []
    daemon: process.Daemon | None = None
    sshd: SshdProcess | None = None
    registry: Registry | None = None
    try:
        for host in (RECORDER, BROKER, WORKER):
            net.add(host)
        net.link(RECORDER, REC_TO_WORKER, WORKER, WORKER_TO_REC)
        net.link(BROKER, BROKER_TO_WORKER, WORKER, WORKER_TO_BROKER)
        net.link(BROKER, BROKER_TO_REC, RECORDER, REC_TO_BROKER)
        procs.append(start_redis(net, base / "broker", password))
        client = redis.Redis(
            unix_socket_path=str(base / "broker" / "redis.sock"),
            password=password,
            decode_responses=True,
            socket_timeout=10,
        )
        wait_redis(client)
        registry = Registry(client)
        sshd = start_sshd(net, base / "recorder-ssh")
        recorded = base / "recorder" / "recorded"
        recorded.mkdir(parents=True)
        scratch = base / "worker" / "scratch"
        location = sftp_location(
            host=REC_TO_WORKER, port=SSH_PORT, user=sshd.user, key_file=sshd.user_key,
            known_hosts=sshd.known_hosts, root=recorded, connect_timeout=3, io_timeout=3,
        )  # fmt: skip
        worker_config = write_worker_config(
            base / "worker" / "kamado.toml",
            scratch=scratch,
            location=location,
            staging={"retries": 8, "retry_delay": 0.5},
            top={
                "broker_url": f"redis://:{password}@{BROKER_TO_WORKER}:{REDIS_PORT}/0",
                "state_dir": str(base / "worker" / "state"),
            },
            sections={
                "worker": {"backends": ["x264"], "hostname": "worker@e2e"},
                "jobs": {"retry_delay": 1, "lease_ttl": 15},
            },
        )
        recorder_config = write_worker_config(
            base / "recorder" / "kamado.toml",
            scratch=base / "recorder" / "scratch",
            location=location,
            top={
                "broker_url": f"redis://:{password}@{BROKER_TO_REC}:{REDIS_PORT}/0",
                "state_dir": str(base / "recorder" / "state"),
            },
            sections={"encode": {"default_profile": "h264-x264"}},
        )
        with recorder_config.open("a", encoding="utf-8") as fh:
            fh.write(f"\n[[scheduler.path_map]]\nrecorder = {toml_value(str(recorded))}\n")
            fh.write('target = "sftp://recorder"\n')
        worker_log = base / "worker" / "worker.log"
        argv = [
            sys.executable, "-m", "worker.cli.main", "worker", "--config", str(worker_config),
            "--hostname", "worker@e2e", "--loglevel", "INFO",
        ]  # fmt: skip
        daemon = process.Daemon(
            net.argv(WORKER, argv), env={"REMAP_SIGTERM": "SIGQUIT"}, log=worker_log
        )
        yield Cluster(net, recorded, scratch, recorder_config, worker_log, registry, daemon, sshd)
    finally:
        if daemon is not None:
            daemon.stop(grace=15)
        if sshd is not None:
            sshd.stop()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if registry is not None:
            registry.close()
        net.close()
