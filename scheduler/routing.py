"""The routing policy, as plain functions over a snapshot of the cluster (no I/O).

Hardware-only jobs always wait for ``encode.gpu``. A job that also accepts software goes
to ``encode.gpu`` when a hardware worker is up or a host agent can wake one, and is moved
to ``encode.cpu`` only when the expected wait for hardware (the work queued ahead at the
measured hardware speed, plus the boot time if the VM is down) exceeds the expected
software encode time (plus the work a software worker has ahead of it).

Which job moves is a list-scheduling choice, not the first that qualifies. Jobs of one
priority level are interchangeable to the hardware worker, so a job's wait is taken as
if it were the last of its level: the hardware's time to drain that level (and every
more urgent one) without it. Of the jobs whose software finish is within that wait, the
most urgent level goes first (new recordings before backlog) and, within a level, the
longest: the slow worker takes long jobs while the hardware has plenty queued, and near
the end only short jobs still fit, so both lanes run dry together instead of the slow
worker finishing a long job alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from worker.profiles import QUEUE_CPU, QUEUE_GPU, Backend, Profile

# A job whose length nobody knows is taken as a 30-minute programme.
DEFAULT_LENGTH_S = 1800.0


@dataclass
class Lane:
    """A kind of worker: when each of its slots is next free (seconds from now), its speed."""

    free_at: list[float] = field(default_factory=list)
    realtime: float = 1.0

    @property
    def available(self) -> bool:
        """True when the lane has a slot that will ever be free."""
        return any(math.isfinite(t) for t in self.free_at)

    def finish(self, length_s: float) -> float:
        """When a job of this length would end if given to the earliest free slot."""
        if not self.available:
            return math.inf
        return min(self.free_at) + length_s / self.realtime

    def occupy(self, seconds: float) -> None:
        """Account for a job the earliest free slot has just taken, ``seconds`` from its end."""
        if seconds > 0 and self.free_at:
            slot = self.free_at.index(min(self.free_at))
            self.free_at[slot] = max(self.free_at[slot], 0.0) + seconds

    def take(self, length_s: float) -> float:
        """Give the job to the earliest free slot; return when it ends."""
        end = self.finish(length_s)
        self.free_at[self.free_at.index(min(self.free_at))] = end
        return end


@dataclass
class Cluster:
    """What routing knows: the two lanes and how many jobs wait for software already."""

    hardware: Lane
    software: Lane
    software_waiting: int = 0
    software_workers: int = 0


@dataclass(frozen=True)
class Pending:
    """A job waiting in encode.gpu, in delivery order (priority: 0 is most urgent)."""

    job_id: str
    length_s: float
    movable: bool
    priority: int = 0


def accepts_software(profile: Profile) -> bool:
    """True when the profile may run on libx264."""
    return Backend.X264 in profile.backends


def initial_queue(profile: Profile, cluster: Cluster) -> str:
    """The queue a new job is published to."""
    if profile.hardware_only:
        return QUEUE_GPU
    if not profile.backends[0].hardware:
        return QUEUE_CPU
    if cluster.hardware.available or not cluster.software.available:
        return QUEUE_GPU
    return QUEUE_CPU


def plan(pending: list[Pending], cluster: Cluster, *, lookahead: int) -> list[str]:
    """Ids of waiting jobs to move to encode.cpu now, in the order they should be moved.

    At most ``lookahead`` jobs per software worker wait in encode.cpu at a time, so a
    decision is made late, with the freshest speeds and progress.
    """
    budget = lookahead * cluster.software_workers - cluster.software_waiting
    if budget <= 0 or not cluster.software.available:
        return []
    software = Lane(list(cluster.software.free_at), cluster.software.realtime)
    queue = list(pending)
    moves: list[str] = []
    while len(moves) < budget and (job := _pick(queue, cluster.hardware, software)):
        software.take(job.length_s)
        queue.remove(job)
        moves.append(job.job_id)
    return moves


def _drain_times(queue: list[Pending], hardware: Lane) -> dict[int, float]:
    """Per priority level: seconds until the hardware has run every job up to that level.

    The queue is spread evenly over the hardware slots (exact for one worker).
    """
    if not hardware.available:
        return {job.priority: math.inf for job in queue}
    slots = [t for t in hardware.free_at if math.isfinite(t)]
    work = sum(slots)
    drained: dict[int, float] = {}
    for job in queue:
        work += job.length_s / hardware.realtime
        drained[job.priority] = work / len(slots)
    return drained


def _pick(queue: list[Pending], hardware: Lane, software: Lane) -> Pending | None:
    """The next job for the software lane, or None when none is expected to finish sooner."""
    drained = _drain_times(queue, hardware)
    slots = max(len([t for t in hardware.free_at if math.isfinite(t)]), 1)
    for level in sorted(drained):
        movable = [job for job in queue if job.movable and job.priority == level]
        if not math.isfinite(drained[level]):
            if movable:  # no hardware will come: software takes them in delivery order
                return movable[0]
            continue
        fits = [
            job
            for job in movable
            if software.finish(job.length_s)
            <= drained[level] - job.length_s / hardware.realtime / slots
        ]
        if fits:
            return max(fits, key=lambda job: job.length_s)
    return None
