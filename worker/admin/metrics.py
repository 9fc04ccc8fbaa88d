"""kamado's Prometheus endpoint: jobs, queues, speeds, failures, VMs and the spool.

A custom collector reads Redis at every scrape (no counters kept in a process that might
restart), so any process can serve it; the scheduler mounts it with one call to
:func:`serve_metrics`. Flower's own ``/metrics`` adds task events and runtimes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from worker.admin.metrics_read import Reader, Snapshot
from worker.broker.address import broker_url
from worker.broker.heartbeat import now
from worker.broker.registry import Registry
from worker.errors import BrokerError, KamadoError
from worker.settings.model import Settings

__all__ = ["serve_metrics"]

log = logging.getLogger("kamado.metrics")


def snapshot_families(snap: Snapshot) -> Iterator[Metric]:
    """The Prometheus metric families of one snapshot."""
    jobs = GaugeMetricFamily("kamado_jobs", "Jobs in the registry by state", labels=["state"])
    for state, count in sorted(snap.jobs.items()):
        jobs.add_metric([state], count)
    yield jobs

    queues = GaugeMetricFamily(
        "kamado_queue_messages",
        "Messages waiting in a queue, all priority levels",
        labels=["queue"],
    )
    for queue, depth in sorted(snap.queues.items()):
        queues.add_metric([queue], depth)
    yield queues
    yield GaugeMetricFamily(
        "kamado_unacked_messages",
        "Messages delivered to a worker and not yet acknowledged (running or prefetched)",
        value=snap.unacked,
    )

    yield from _worker_families(snap)
    yield from _speed_families(snap)

    yield from _counter_families(snap)
    yield from _host_families(snap)

    yield GaugeMetricFamily(
        "kamado_spool_submissions",
        "Submissions spooled on disk while the broker was away",
        value=snap.spool,
    )
    yield GaugeMetricFamily(
        "kamado_spool_oldest_age_seconds",
        "Age of the oldest spooled submission (0 when the spool is empty)",
        value=snap.spool_oldest_age,
    )
    yield GaugeMetricFamily(
        "kamado_spool_unreadable",
        "Spooled entries the scheduler may not read (left in the spool; fix their mode)",
        value=snap.spool_unreadable,
    )


def _worker_families(snap: Snapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "kamado_worker_up", "1 for each worker with a live heartbeat", labels=["worker"]
    )
    busy = GaugeMetricFamily(
        "kamado_worker_busy", "1 while the worker holds a job", labels=["worker"]
    )
    queues = GaugeMetricFamily(
        "kamado_worker_queue", "1 for each queue a live worker consumes", labels=["worker", "queue"]
    )
    for beat in snap.workers:
        up.add_metric([beat.hostname], 1)
        busy.add_metric([beat.hostname], 1 if beat.current_job else 0)
        for queue in beat.queues:
            queues.add_metric([beat.hostname, queue], 1)
    yield up
    yield busy
    yield queues
    yield GaugeMetricFamily(
        "kamado_workers", "Workers with a live heartbeat", value=len(snap.workers)
    )


def _speed_families(snap: Snapshot) -> Iterator[Metric]:
    fps = GaugeMetricFamily(
        "kamado_encode_fps",
        "Measured encode speed in frames per second (moving average over finished jobs)",
        labels=["worker", "backend"],
    )
    realtime = GaugeMetricFamily(
        "kamado_encode_realtime_factor",
        "Measured encode speed as a multiple of realtime (moving average over finished jobs)",
        labels=["worker", "backend"],
    )
    done = CounterMetricFamily(
        "kamado_encoded_jobs",
        "Jobs finished per worker and backend (the jobs behind the averages)",
        labels=["worker", "backend"],
    )
    for speed in snap.speeds:
        labels = [speed.worker, speed.backend]
        if speed.fps is not None:
            fps.add_metric(labels, speed.fps)
        if speed.realtime is not None:
            realtime.add_metric(labels, speed.realtime)
        done.add_metric(labels, speed.jobs)
    yield fps
    yield realtime
    yield done

    live_fps: dict[tuple[str, str], float] = defaultdict(float)
    live_speed: dict[tuple[str, str], float] = defaultdict(float)
    live_count: dict[tuple[str, str], int] = defaultdict(int)
    for job in snap.running:
        key = (job.worker, job.backend)
        live_count[key] += 1
        live_fps[key] += job.fps or 0.0
        live_speed[key] += job.speed or 0.0
    running = GaugeMetricFamily(
        "kamado_running_jobs", "Jobs running now", labels=["worker", "backend"]
    )
    run_fps = GaugeMetricFamily(
        "kamado_running_encode_fps",
        "Frames per second of the encodes running now (summed per worker and backend)",
        labels=["worker", "backend"],
    )
    run_speed = GaugeMetricFamily(
        "kamado_running_encode_realtime_factor",
        "ffmpeg speed (× realtime) of the encodes running now (summed per worker and backend)",
        labels=["worker", "backend"],
    )
    for key in sorted(live_count):
        running.add_metric(list(key), live_count[key])
        run_fps.add_metric(list(key), live_fps[key])
        run_speed.add_metric(list(key), live_speed[key])
    yield running
    yield run_fps
    yield run_speed


def _counter_families(snap: Snapshot) -> Iterator[Metric]:
    # Counters live in Redis (worker/broker/counters.py), so they only grow: rate() works.
    failures = CounterMetricFamily(
        "kamado_attempt_failures",
        "Failed attempts by reason (ffmpeg kind, lost, timeout, ...)",
        labels=["reason"],
    )
    for reason, count in snap.counters.attempt_failures.items():
        failures.add_metric([reason], count)
    yield failures
    watchdog = CounterMetricFamily(
        "kamado_watchdog_actions",
        "Times a worker's watchdog found it silent with work waiting, by action "
        "(restart: its consumer was restarted; exit: the worker exited for systemd)",
        labels=["worker", "action"],
    )
    for (worker, action), count in snap.counters.watchdog.items():
        watchdog.add_metric([worker, action], count)
    yield watchdog


def _host_families(snap: Snapshot) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "kamado_vm_state",
        "1 for the passthrough VM's current state, from the host agent's heartbeat",
        labels=["host", "state"],
    )
    running = GaugeMetricFamily(
        "kamado_vm_running", "1 while the host agent reports its VM running", labels=["host"]
    )
    preflight = GaugeMetricFamily(
        "kamado_host_preflight_ok",
        "1 when the host's VFIO/IOMMU preflight passed, 0 when it failed",
        labels=["host"],
    )
    age = GaugeMetricFamily(
        "kamado_host_heartbeat_age_seconds",
        "Seconds since the host agent's last heartbeat",
        labels=["host"],
    )
    current = now()
    for beat in snap.hosts:
        state.add_metric([beat.name, beat.vm_state], 1)
        running.add_metric([beat.name], 1 if beat.vm_state == "running" else 0)
        if beat.preflight_ok is not None:
            preflight.add_metric([beat.name], 1 if beat.preflight_ok else 0)
        age.add_metric([beat.name], max((current - beat.updated_at).total_seconds(), 0.0))
    yield state
    yield running
    yield preflight
    yield age


class KamadoCollector:
    """A prometheus-client collector that reads the registry at every scrape."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.reader = Reader(settings, registry)
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        """Read Redis once and yield every family; kamado_up says whether that worked."""
        started = time.monotonic()
        with self._lock:
            try:
                snap: Snapshot | None = self.reader.snapshot()
            except BrokerError as e:
                log.warning("metrics: %s", e)
                snap = None
        yield GaugeMetricFamily(
            "kamado_up", "1 when the broker and registry could be read", value=0 if not snap else 1
        )
        if snap is not None:
            yield from snapshot_families(snap)
        yield GaugeMetricFamily(
            "kamado_scrape_duration_seconds",
            "Time spent reading Redis for this scrape",
            value=time.monotonic() - started,
        )


def connect(settings: Settings) -> Registry:
    """A job registry connection on the broker the metrics read."""
    return Registry.connect(broker_url(settings, embedded=True), lease_ttl=settings.jobs.lease_ttl)


def build_registry(settings: Settings, registry: Registry | None = None) -> CollectorRegistry:
    """A CollectorRegistry with kamado's collector, reading ``registry`` (or a new one)."""
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(KamadoCollector(settings, registry or connect(settings)))
    return collectors


class MetricsServer:
    """kamado's /metrics over HTTP in a background thread; close() stops it."""

    def __init__(
        self, server: WSGIServer, thread: threading.Thread, owned: Registry | None
    ) -> None:
        self.server = server
        self.thread = thread
        self._owned = owned

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and close the Redis connection."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self._owned is not None:
            self._owned.close()


def serve_metrics(
    settings: Settings,
    address: str | None = None,
    port: int | None = None,
    *,
    registry: Registry | None = None,
) -> MetricsServer:
    """Serve kamado's metrics at http://address:port/metrics (defaults from [metrics])."""
    bind = settings.metrics.address if address is None else address
    chosen = settings.metrics.port if port is None else port
    owned = None if registry is not None else connect(settings)
    collectors = build_registry(settings, registry or owned)
    try:
        server, thread = start_http_server(chosen, addr=bind, registry=collectors)
    except OSError as e:
        if owned is not None:
            owned.close()
        raise KamadoError(f"metrics: cannot listen on {bind}:{chosen}: {e.strerror or e}") from e
    log.info("metrics on http://%s:%d/metrics", bind, server.server_port)
    return MetricsServer(server, thread, owned)
