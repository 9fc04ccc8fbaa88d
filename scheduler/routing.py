"""The routing policy, as plain functions over a snapshot of the cluster (no I/O).

Hardware-only jobs always wait for ``encode.gpu``. A job that also accepts software goes
to ``encode.gpu`` when a hardware worker is up or a host agent can wake one, and is moved
to ``encode.cpu`` only when it would finish sooner there: when the expected wait for
hardware (the work queued ahead at the measured hardware speed, plus the boot time if
the VM is down) plus its hardware encode time exceeds the expected software encode time
(plus the work a software worker has ahead of it). Jobs are taken in delivery order, so
this is an earliest-finish-time list schedule over the two lanes.
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
    """A job waiting in encode.gpu, in delivery order."""

    job_id: str
    length_s: float
    movable: bool


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
    hardware = Lane(list(cluster.hardware.free_at), cluster.hardware.realtime)
    software = Lane(list(cluster.software.free_at), cluster.software.realtime)
    moves: list[str] = []
    for job in pending:
        on_hardware = hardware.finish(job.length_s)
        if job.movable and software.finish(job.length_s) < on_hardware:
            software.take(job.length_s)
            moves.append(job.job_id)
            if len(moves) >= budget:
                break
        else:
            hardware.take(job.length_s)
    return moves
