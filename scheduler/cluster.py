"""A snapshot of the cluster for routing: live workers, their speeds, running jobs, hosts.

A worker's heartbeat names its current job only every few seconds, so the jobs running
are read from the broker too: kombu keeps every delivered, unacknowledged message (with
late acks, every job a worker holds) in its ``unacked`` hash with the queue it came
from. A job a worker has just taken is off its queue and not yet in any heartbeat; only
that hash shows it. Without it, the routing pass that follows a software worker taking
its next job, which is exactly when a software slot opens, sees that worker idle.

With no hardware worker up, a host agent that can start (or is booting) its VM counts as
hardware arriving after the boot time. A host whose VM's worker (the heartbeat's
``guest_worker``) already beats without serving hardware does not: that guest is up and
proved only software, so no hardware comes from it and software-capable jobs may move.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from scheduler.queues import BrokerState, Message
from scheduler.routing import DEFAULT_LENGTH_S, Cluster, Lane, Pending, accepts_software
from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat, now
from worker.broker.keys import UNACKED, job_key
from worker.broker.presence import workers
from worker.broker.registry import Registry, task_job_id
from worker.jobs import Job, JobState
from worker.profiles import QUEUE_CPU, QUEUE_GPU, Backend, all_profiles
from worker.settings.model import Settings
from worker.settings.scheduler import RoutingSettings

MAX_SCAN = 500


def _hardware(beat: WorkerHeartbeat) -> list[float | None]:
    speeds = []
    for item in beat.backends:
        if item.backend in Backend._value2member_map_ and Backend(item.backend).hardware:
            speeds.append(item.realtime)
    return speeds


def _serves_hardware(beat: WorkerHeartbeat) -> bool:
    """True when the worker takes encode.gpu with a proven hardware backend."""
    return QUEUE_GPU in beat.queues and bool(_hardware(beat))


def _software(beat: WorkerHeartbeat) -> list[float | None]:
    return [b.realtime for b in beat.backends if b.backend == Backend.X264.value]


def _speed(values: list[float | None], default: float) -> float:
    known = [v for v in values if v]
    return max(known) if known else default


def delivery(raw: str) -> tuple[str, str] | None:
    """The job id and queue of one of kombu's unacked entries: [message, exchange, queue]."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], dict)):
        return None
    job_id = task_job_id(data[0])
    return (job_id, str(data[2])) if job_id else None


def wake_delay(
    hosts: list[HostHeartbeat],
    routing: RoutingSettings,
    at: datetime,
    no_hardware: Collection[str] = frozenset(),
) -> float | None:
    """Seconds until a host agent could have a hardware worker up; None if none can.

    ``no_hardware`` names the live workers that serve no hardware: a host whose guest
    worker is one of them is up and proved none, so it brings no hardware lane (unless
    it holds its starts: then it counts from the hold's end, as before). A host that
    names no guest worker (an older agent) counts by its VM state alone.
    """
    delays = []
    for host in hosts:
        if host.preflight_ok is False:
            continue
        if host.held_until is not None and host.held_until > at:
            # The agent shut the VM down because its worker never consumed: not before this.
            delays.append((host.held_until - at).total_seconds() + routing.vm_boot_time)
        elif host.guest_worker and host.guest_worker in no_hardware:
            continue  # its guest is up and serves software only: no hardware comes
        elif host.vm_state == "running" and host.last_action_at is not None:
            since = (at - host.last_action_at).total_seconds()
            delays.append(max(routing.vm_boot_time - since, 0.0))
        else:
            delays.append(routing.vm_boot_time)
    return min(delays) if delays else None


class Snapshot:
    """Reads what routing needs from Redis, one pass at a time."""

    def __init__(self, registry: Registry, state: BrokerState, settings: Settings) -> None:
        self.registry = registry
        self.state = state
        self.settings = settings
        self.routing = settings.scheduler.routing
        self.profiles = all_profiles(settings.profiles)

    def remaining(self, job_id: str | None, realtime: float) -> float:
        """Seconds until this running job ends (0 when there is none or it has ended)."""
        if not job_id:
            return 0.0
        record = self.registry.get(job_id)
        if record is None or record.state.final:
            return 0.0
        if record.progress and record.progress.eta_s is not None:
            return record.progress.eta_s
        length = self.state.estimates([record.id]).get(record.id, DEFAULT_LENGTH_S)
        done = record.progress.percent / 100 if record.progress else 0.0
        return length * (1 - done) / realtime

    def delivered(self) -> dict[str, str]:
        """Jobs workers have taken off a queue and not yet acknowledged, with that queue."""
        raws = self.registry.call("read delivered messages", self.registry.client.hvals, UNACKED)
        return dict(found for raw in raws if (found := delivery(raw)))

    def cluster(self, *, with_queues: bool = True) -> Cluster:
        """The two lanes as they are now."""
        beats = workers(self.registry)
        hw = [b for b in beats if _serves_hardware(b)]
        sw = [b for b in beats if QUEUE_CPU in b.queues and _software(b)]
        hw_speed = _speed([s for b in hw for s in _hardware(b)], self.routing.hardware_realtime)
        sw_speed = _speed([s for b in sw for s in _software(b)], self.routing.software_realtime)
        # The software queue is read before the deliveries: a job taken in between is then
        # counted twice (one pass too cautious), never missed (one pass too eager).
        queued = self.state.waiting(QUEUE_CPU) if with_queues and sw else []
        delivered = self.delivered() if with_queues else {}
        hardware = Lane([self.remaining(b.current_job, hw_speed) for b in hw], hw_speed)
        if not hw:
            software_only = {b.hostname for b in beats if not _serves_hardware(b)}
            delay = wake_delay(self.state.hosts(), self.routing, now(), software_only)
            if delay is not None:
                hardware.free_at = [delay]
        software = Lane([self.remaining(b.current_job, sw_speed) for b in sw], sw_speed)
        shown = {b.current_job for b in beats}
        lanes = {QUEUE_GPU: hardware if hw else None, QUEUE_CPU: software if sw else None}
        for job_id, queue in delivered.items():
            lane = lanes.get(queue)
            if lane is not None and job_id not in shown:
                lane.occupy(self.remaining(job_id, lane.realtime))
        lengths = self.state.estimates([m.job_id for m in queued])
        for message in queued:
            software.take(lengths.get(message.job_id, DEFAULT_LENGTH_S))
        return Cluster(hardware, software, len(queued), len(sw))

    def pending(self, messages: list[Message]) -> tuple[list[Pending], dict[str, Job]]:
        """The jobs behind waiting encode.gpu messages (queued ones only), with their lengths."""
        messages = messages[:MAX_SCAN]
        ids = [m.job_id for m in messages]
        pipe = self.registry.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(job_key(job_id), "state", "job")
        rows = self.registry.call("read waiting jobs", pipe.execute)
        lengths = self.state.estimates(ids)
        pending: list[Pending] = []
        jobs: dict[str, Job] = {}
        for job_id, (state, raw) in zip(ids, rows, strict=True):
            if state != JobState.QUEUED.value or not raw or job_id in jobs:
                continue
            job = Job.model_validate_json(raw)
            profile = self.profiles.get(job.profile)
            movable = profile is not None and accepts_software(profile)
            jobs[job_id] = job
            length = lengths.get(job_id, DEFAULT_LENGTH_S)
            pending.append(Pending(job_id, length, movable, job.priority))
        return pending, jobs
