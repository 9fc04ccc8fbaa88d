"""The chaos rig: a recorder, a broker, a scheduler and two workers as network namespaces,
with a seeded loop of real faults while recordings flow through (bench/chaos.py, tests).

    recorder 10.214.1.1 ── 10.214.1.2 worker a     (SFTP: recordings and outputs)
    recorder 10.214.2.1 ── 10.214.2.2 worker b
    broker   10.214.3.1 ── 10.214.3.2 worker a     (Redis)
    broker   10.214.4.1 ── 10.214.4.2 worker b
    broker   10.214.5.1 ── 10.214.5.2 scheduler    (`kamado scheduler run`)

The driver (this process) submits jobs and reads the registry over Redis's unix socket
and sees the recorder's files directly. Faults: kill -9 of a worker or its pool child
mid-encode, redis-server killed and restarted, Redis frozen (SIGSTOP) longer than the
lease, a worker's SFTP link cut, a worker's scratch disk (a small tmpfs) filled up.

systemd's `Restart=always` is played by a supervisor thread: a worker that is gone is
started again a second later (RestartSec), whether the chaos killed it or it exited by
itself. Exits the chaos did not cause are kept in :attr:`World.exits`, with their code
and the end of their log, so a crash is never hidden by the restart.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.integration.prefetch.remote_worker import sftp_location, write_worker_config
from tests.support.media import leftovers, sha256
from tests.support.netns import Netns
from tests.support.procs import parent_of
from tests.support.redis_proc import REDIS_SERVER
from tests.support.sshd import SSHD, SshdProcess
from worker import process
from worker.broker.counters import read_counters
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.encode.ffprobe import read_media
from worker.encode.verify import verify_output
from worker.errors import KamadoError
from worker.jobs import Job, JobState
from worker.settings.model import Settings
from worker.submit import submit_job

RECORDER, BROKER, SCHEDULER = "recorder", "broker", "sched"
WORKERS = ("a", "b")
REDIS_PORT, SSH_PORT = 6379, 22
LEASE_TTL = 4.0
IO_TIMEOUT = 3
PROFILE = "chaos"
PROFILES = {PROFILE: {"backends": ["x264"], "x264_preset": "veryfast", "height": 480}}
FAULTS = ("kill_worker", "kill_pool_child", "redis_restart", "redis_freeze", "sftp_cut",
          "disk_full")  # fmt: skip
SCRATCH_MB = 48


def rec_addr(n: int) -> tuple[str, str]:
    return f"10.214.{n + 1}.1", f"10.214.{n + 1}.2"


def broker_addr(n: int) -> tuple[str, str]:
    return f"10.214.{n + 3}.1", f"10.214.{n + 3}.2"


@dataclass
class Figures:
    """What one run produced."""

    jobs: int
    done: int = 0
    failed: int = 0
    lost: int = 0
    duplicates: int = 0
    sources_changed: int = 0
    bad_outputs: int = 0
    leftovers: int = 0
    input_blamed: int = 0
    watchdog: dict[tuple[str, str], int] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)  # workers gone without being killed
    timeline: list[tuple[float, str]] = field(default_factory=list)
    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Jobs done per minute."""
        return self.done / self.seconds * 60 if self.seconds else 0.0


class World:
    """Every process of one run, and the faults that can be done to them."""

    def __init__(self, root: Path, *, watchdog_silence: float = 10.0) -> None:
        self.root = root
        self.net = Netns()
        self.stack = contextlib.ExitStack()
        self.watchdog_silence = watchdog_silence
        self.broker_dir = root / "broker"
        self.socket = self.broker_dir / "redis.sock"
        self.recorded = root / "recorder" / "recorded"
        self.redis: subprocess.Popen[bytes] | None = None
        self.sshd: SshdProcess | None = None
        self.workers: dict[str, process.Daemon] = {}
        self.configs: dict[str, Path] = {}
        self.scratch: dict[str, Path] = {}
        self.scheduler: process.Daemon | None = None
        self.restarts: Counter[str] = Counter()
        self.exits: list[str] = []
        self._killed: set[str] = set()  # workers the chaos killed, not yet restarted
        self._lock = threading.Lock()
        self._supervising = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="systemd", daemon=True)

    # -- building ---------------------------------------------------------------------

    def __enter__(self) -> World:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        for host in (RECORDER, BROKER, SCHEDULER, *WORKERS):
            self.net.add(host)
        for n, name in enumerate(WORKERS):
            self.net.link(RECORDER, rec_addr(n)[0], name, rec_addr(n)[1])
            self.net.link(BROKER, broker_addr(n)[0], name, broker_addr(n)[1])
        self.net.link(BROKER, broker_addr(2)[0], SCHEDULER, broker_addr(2)[1])
        self.broker_dir.mkdir(parents=True)
        self.start_redis()
        self.client = redis.Redis(unix_socket_path=str(self.socket), decode_responses=True,
                                  socket_timeout=10)  # fmt: skip
        self.registry = Registry(self.client, lease_ttl=LEASE_TTL)
        url = f"redis+socket://{self.socket}"
        self.settings = Settings(broker_url=url, state_dir=self.root / "driver",
                                 profiles=PROFILES, jobs={"lease_ttl": LEASE_TTL})  # fmt: skip
        self.app = create_app(self.settings)
        self.recorded.mkdir(parents=True)
        self._start_sshd()
        for n, name in enumerate(WORKERS):
            self._configure_worker(n, name)
            self.start_worker(name)
        self._start_scheduler()
        self._supervising.set()
        self._supervisor.start()

    def unplanned_exits(self) -> list[str]:
        """Every time a worker was gone without the chaos killing it."""
        with self._lock:
            return list(self.exits)

    def _supervise(self) -> None:
        """systemd's Restart=always with RestartSec=1 for every worker."""
        while self._supervising.is_set():
            for name in WORKERS:
                with self._lock:
                    daemon = self.workers[name]
                    if daemon.alive():
                        continue
                    if name in self._killed:
                        self._killed.discard(name)
                    else:
                        self.exits.append(
                            f"worker {name} (start {self.restarts[name]}) exited with "
                            f"{daemon.returncode}:\n{daemon.log_tail(30)}"
                        )
                    daemon.stop(grace=0)  # reap it; its children die with it
                time.sleep(1.0)  # RestartSec
                with self._lock:
                    if self._supervising.is_set():
                        self.start_worker(name)
            time.sleep(0.2)

    def start_redis(self) -> None:
        """redis-server in the broker namespace (AOF, fsync always) and on a unix socket."""
        binds = [broker_addr(n)[0] for n in range(3)]
        argv = [
            REDIS_SERVER, "--bind", *binds, "--port", str(REDIS_PORT),
            "--unixsocket", str(self.socket), "--unixsocketperm", "700", "--protected-mode", "no",
            "--dir", str(self.broker_dir), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--daemonize", "no", "--logfile", str(self.broker_dir / "redis.log"),
        ]  # fmt: skip
        self.redis = subprocess.Popen(self.net.argv(BROKER, argv), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        probe = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            while True:
                with contextlib.suppress(redis.RedisError):
                    if probe.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        finally:
            probe.close()

    def _start_sshd(self) -> None:
        server = SshdProcess(self.root / "recorder-ssh", SSH_PORT, address=rec_addr(0)[0])
        server.prepare()
        extra = "".join(f"ListenAddress {rec_addr(n)[0]}\n" for n in range(1, len(WORKERS)))
        server.config.write_text(server.config.read_text() + extra)
        line = server.known_hosts.read_text().split(" ", 1)[1]
        server.known_hosts.write_text(
            "".join(f"{rec_addr(n)[0]} {line}" for n in range(len(WORKERS)))
        )
        with server.log.open("ab") as log:
            server.proc = subprocess.Popen(
                self.net.argv(RECORDER, [SSHD, "-D", "-e", "-f", str(server.config)]),
                stdout=log,
                stderr=log,
            )
        for n, name in enumerate(WORKERS):
            self.net.wait_tcp(name, rec_addr(n)[0], SSH_PORT)
        self.sshd = server

    def _configure_worker(self, n: int, name: str) -> None:
        assert self.sshd is not None
        scratch = self.root / f"worker-{name}" / "scratch"
        scratch.mkdir(parents=True)
        # A small disk of its own, so the fault can fill it without touching the host.
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SCRATCH_MB}m", "tmpfs",
                        str(scratch)], check=True, timeout=30)  # fmt: skip
        self.stack.callback(subprocess.run, ["umount", "-l", str(scratch)], timeout=30)
        self.scratch[name] = scratch
        location = sftp_location(
            host=rec_addr(n)[0], port=SSH_PORT, user=self.sshd.user, key_file=self.sshd.user_key,
            known_hosts=self.sshd.known_hosts, root=self.recorded, connect_timeout=IO_TIMEOUT,
            io_timeout=IO_TIMEOUT,
        )  # fmt: skip
        self.configs[name] = write_worker_config(
            self.root / f"worker-{name}" / "kamado.toml",
            scratch=scratch,
            location=location,
            staging={"retries": 4, "retry_delay": 0.5},
            top={
                "broker_url": f"redis://{broker_addr(n)[0]}:{REDIS_PORT}/0",
                "state_dir": str(self.root / f"worker-{name}" / "state"),
            },
            sections={
                "worker": {"backends": ["x264"], "hostname": f"{name}@chaos",
                           "watchdog_silence": self.watchdog_silence},
                # Retries spread over about 20 s: longer than the longest fault.
                "jobs": {"retry_delay": 2, "lease_ttl": LEASE_TTL, "max_attempts": 5},
                "encode": {"progress_interval": 0.5},
            },
        )  # fmt: skip
        with self.configs[name].open("a", encoding="utf-8") as fh:
            fh.write(f'\n[profiles.{PROFILE}]\nbackends = ["x264"]\n')
            fh.write(f'x264_preset = "veryfast"\nheight = {PROFILES[PROFILE]["height"]}\n')

    def start_worker(self, name: str) -> None:
        """`kamado worker` in its namespace (also what systemd does after a kill)."""
        self.restarts[name] += 1
        argv = [sys.executable, "-m", "worker.cli.main", "worker", "--config",
                str(self.configs[name]), "--loglevel", "INFO"]  # fmt: skip
        log = self.root / f"worker-{name}" / f"worker-{self.restarts[name]}.log"
        self.workers[name] = process.Daemon(
            self.net.argv(name, argv), env={"REMAP_SIGTERM": "SIGQUIT"}, log=log
        )

    def _start_scheduler(self) -> None:
        env = {
            "KAMADO_CONFIG": "",
            "KAMADO_BROKER_URL": f"redis://{broker_addr(2)[0]}:{REDIS_PORT}/0",
            "KAMADO_STATE_DIR": str(self.root / "sched"),
            "KAMADO_JOBS__LEASE_TTL": str(LEASE_TTL),
            "KAMADO_JOBS__RECONCILE_INTERVAL": "1",
            "KAMADO_JOBS__MAX_ATTEMPTS": "5",
            "KAMADO_METRICS__ENABLED": "false",
        }
        argv = [sys.executable, "-m", "worker.cli.main", "scheduler", "run"]
        self.scheduler = process.Daemon(self.net.argv(SCHEDULER, argv), env=env,
                                        log=self.root / "scheduler.log")  # fmt: skip

    def close(self) -> None:
        """Stop everything this world started and remove its namespaces and mounts."""
        self._supervising.clear()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=30)
        if self.redis is not None and self.redis.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.redis.pid, signal.SIGCONT)
        for daemon in [*self.workers.values(), self.scheduler]:
            if daemon is not None:
                daemon.stop(grace=10)
        if self.sshd is not None:
            self.sshd.stop()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)
        with contextlib.suppress(Exception):
            self.app.close()
            self.client.close()
        self.stack.close()
        self.net.close()

    # -- jobs -------------------------------------------------------------------------

    def submit(self, clip: Path, count: int, tag: str) -> dict[str, tuple[Path, str]]:
        """Copy ``count`` recordings onto the recorder and submit them; id -> (path, sha)."""
        jobs = {}
        for n in range(count):
            path = Path(shutil.copy2(clip, self.recorded / f"{tag} 番組 #{n:03d} 'x'.ts"))
            job = Job.create(f"sftp://recorder/{path.name}", PROFILE)
            submit_job(self.app, self.registry, self.settings, job)
            jobs[job.id] = (path, sha256(path))
        return jobs

    def final(self, ids: list[str]) -> int:
        """How many of these jobs are final now."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"kamado:job:{job_id}", "state")
        states = pipe.execute()
        return sum(1 for s in states if s in ("done", "failed", "cancelled"))

    # -- faults -----------------------------------------------------------------------

    def encoding_ffmpeg(self, name: str) -> int | None:
        """The pid of an ffmpeg encoding a job in worker ``name``'s namespace, if one runs.

        Only an ffmpeg run by a pool child counts: the worker's main process runs ffmpeg
        too (its start-up probe), and that is neither an encode nor a pool child.
        """
        main = self.workers[name].pid
        for pid in self.net.pids(name):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if Path(f"/proc/{pid}/comm").read_text().strip() != "ffmpeg":
                    continue
                parent = parent_of(pid)
                if parent != main and parent_of(parent) == main:
                    return pid
        return None

    def kill_worker(self, names: list[str], pool_child: bool) -> bool:
        """kill -9 of a worker's main process, or of the pool child running its ffmpeg,
        while it encodes (the first of ``names`` seen encoding within a few seconds)."""
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            for name in names:
                ffmpeg = self.encoding_ffmpeg(name)
                if ffmpeg is not None:
                    break
            else:
                time.sleep(0.05)
                continue
            break
        else:
            return False  # nothing encoding: skip rather than count a kill that was not one
        with self._lock, contextlib.suppress(OSError):
            victim = parent_of(ffmpeg) if pool_child else self.workers[name].pid
            if not pool_child:
                self._killed.add(name)  # the supervisor restarts it, as systemd would
            os.kill(victim, signal.SIGKILL)
        return True

    def redis_restart(self, down: float) -> None:
        """SIGKILL redis-server, wait, start it again (only what the AOF holds survives)."""
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait(10)
        time.sleep(down)
        self.start_redis()

    def redis_freeze(self, seconds: float) -> None:
        """SIGSTOP redis-server for ``seconds`` (longer than the lease), then SIGCONT."""
        assert self.redis is not None
        os.kill(self.redis.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.redis.pid, signal.SIGCONT)

    def sftp_cut(self, name: str, seconds: float) -> None:
        """Take worker ``name``'s link to the recorder down for ``seconds``."""
        self.net.set_link(name, RECORDER, up=False)
        try:
            time.sleep(seconds)
        finally:
            self.net.set_link(name, RECORDER, up=True)

    def disk_full(self, name: str, seconds: float) -> None:
        """Fill worker ``name``'s scratch disk for ``seconds``, then free it."""
        filler = self.scratch[name] / ".chaos-filler"
        try:
            with filler.open("wb") as fh, contextlib.suppress(OSError):
                block = b"\0" * (1 << 20)
                while True:
                    fh.write(block)
            time.sleep(seconds)
        finally:
            filler.unlink(missing_ok=True)


class Chaos:
    """A seeded loop of faults at random intervals, bounded in time, in its own thread."""

    def __init__(
        self, world: World, seed: int, *, seconds: float, gap: tuple[float, float], each: int = 1
    ):
        self.world = world
        self.random = random.Random(seed)
        self.seconds = seconds
        self.gap = gap
        self.each = each
        self.done: Counter[str] = Counter()
        self.timeline: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def running(self) -> bool:
        """True until the loop ends (its time is up)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        # Every kind ``each`` times first, in a seeded order; the kills first, as they need
        # an encode running, and the others can be done to an idle system as well.
        kills = [k for k in FAULTS if k.startswith("kill")] * self.each
        others = [k for k in FAULTS if not k.startswith("kill")] * self.each
        self.random.shuffle(kills)
        self.random.shuffle(others)
        order = kills + others
        while not self._stop.wait(self.random.uniform(*self.gap)):
            if time.monotonic() > deadline:
                return
            kind = order.pop(0) if order else self.random.choice(FAULTS)
            try:
                at = time.monotonic()
                if self.one(kind):
                    self.done[kind] += 1
                    self.timeline.append((at, kind))
                elif self.done[kind] < self.each:
                    order.insert(0, kind)  # nothing was encoding: try this kind again next
            except (OSError, RuntimeError, KamadoError, subprocess.SubprocessError) as e:
                self.errors.append(f"{kind}: {e}")

    def one(self, kind: str) -> bool:
        """Do one fault of ``kind``; False when it could not be done now (nothing encoding)."""
        w = self.world
        names = self.random.sample(WORKERS, len(WORKERS))
        name = names[0]
        if kind == "kill_worker":
            return w.kill_worker(names, pool_child=False)
        if kind == "kill_pool_child":
            return w.kill_worker(names, pool_child=True)
        if kind == "redis_restart":
            w.redis_restart(self.random.uniform(0.2, 2.0))
        elif kind == "redis_freeze":
            w.redis_freeze(LEASE_TTL * self.random.uniform(1.3, 2.0))
        elif kind == "sftp_cut":
            w.sftp_cut(name, self.random.uniform(IO_TIMEOUT + 1, IO_TIMEOUT * 2 + 1))
        elif kind == "disk_full":
            w.disk_full(name, self.random.uniform(2.0, 5.0))
        return True


def wait_all_final(world: World, ids: list[str], timeout: float) -> float:
    """Wait until every job is final (or ``timeout``); the monotonic time it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if world.final(ids) == len(ids):
                return time.monotonic()
        time.sleep(0.5)
    return time.monotonic()


def tally(world: World, jobs: dict[str, tuple[Path, str]], seconds: float) -> Figures:
    """Count done, failed with a reason, lost, duplicates, changed sources, bad outputs."""
    figures = Figures(jobs=len(jobs), seconds=seconds)
    for job_id, (source, digest) in jobs.items():
        record = world.registry.get(job_id, with_history=True)
        outputs = sorted(world.recorded.glob(f"{glob_safe(source.stem)}*.mp4"))
        if sha256(source) != digest:
            figures.sources_changed += 1
        done_attempts = [a for a in record.history if a.outcome == "done"] if record else []
        if len(outputs) > 1 or len(done_attempts) > 1:
            figures.duplicates += 1
        if record is not None and record.state is JobState.DONE:
            figures.done += 1
            try:
                (output,) = outputs
                verify_output(output, read_media("ffprobe", source), world.settings.verify)
            except (ValueError, KamadoError) as e:
                figures.bad_outputs += 1
                figures.failures.append(f"{source.name}: output: {e}")
        elif record is not None and record.state is JobState.FAILED and record.error:
            figures.failed += 1
            if record.kind == "input":  # every source is a valid recording
                figures.input_blamed += 1
            figures.failures.append(f"{source.name}: failed: {record.error[:300]}")
        else:
            figures.lost += 1
            state = record.state.value if record else "missing"
            figures.failures.append(f"{source.name}: lost in state {state}")
    figures.leftovers = len(leftovers(world.recorded))
    return figures


def glob_safe(name: str) -> str:
    """``name`` with glob's special characters bracketed."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def run_once(
    root: Path,
    clip: Path,
    count: int,
    *,
    seed: int | None,
    chaos_seconds: float,
    gap: tuple[float, float],
    settle: float,
    each: int = 1,
) -> Figures:
    """One world, ``count`` recordings, with chaos (seed given) or without (seed None)."""
    with World(root) as world:
        time.sleep(1)
        started = time.monotonic()
        jobs = world.submit(clip, count, "chaos" if seed is not None else "calm")
        ids = list(jobs)
        faults: Counter[str] = Counter()
        if seed is None:
            ended = wait_all_final(world, ids, settle)
        else:
            with Chaos(world, seed, seconds=chaos_seconds, gap=gap, each=each) as chaos:
                while time.monotonic() - started < chaos_seconds and chaos.running:
                    with contextlib.suppress(redis.RedisError):
                        if world.final(ids) == len(ids):
                            break
                    time.sleep(0.5)
            faults = chaos.done
            ended = wait_all_final(world, ids, settle)
        figures = tally(world, jobs, ended - started)
        figures.faults = faults
        if seed is not None:
            figures.timeline = [(at - started, kind) for at, kind in chaos.timeline]
        figures.watchdog = read_counters(world.registry).watchdog
        figures.exits = world.unplanned_exits()
        return figures


@contextlib.contextmanager
def chdir_repo() -> Iterator[None]:
    """Run from the repository root, so the workers import this tree's packages."""
    before = Path.cwd()
    os.chdir(Path(__file__).resolve().parents[2])
    try:
        yield
    finally:
        os.chdir(before)
