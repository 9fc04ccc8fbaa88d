"""What each box does, as it happens: read from the recorder's Redis, where the roles meet.

The tour polls the host agent's heartbeat (the VM's state and the agent's last action),
the guest worker's heartbeat (its queues, its proven backends, ffmpeg's reasons for the
others) and the jobs (state, queue, progress), and turns every change into one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis

from worker.broker.heartbeat import HostHeartbeat, WorkerHeartbeat
from worker.broker.keys import host_key, worker_key
from worker.broker.registry import JobRecord, Registry
from worker.jobs import JobState


@dataclass(frozen=True)
class Event:
    """One change: when (seconds since the watch began), which box, what."""

    at: float
    box: str
    what: str
    kind: str = ""  # a short tag tests look for: vm, beat, job


@dataclass
class Watch:
    """Polls the registry and the heartbeats; ``events`` holds every change seen."""

    client: redis.Redis
    registry: Registry
    host: str
    guest_worker: str
    say: Callable[[Event], None] = lambda _: None
    started: float = field(default_factory=time.monotonic)
    events: list[Event] = field(default_factory=list)
    first_beat: WorkerHeartbeat | None = None
    _seen: dict[str, object] = field(default_factory=dict)

    def now(self) -> float:
        """Seconds since the watch began."""
        return time.monotonic() - self.started

    def note(self, box: str, what: str, kind: str = "") -> Event:
        """Record (and say) one event."""
        event = Event(round(self.now(), 1), box, what, kind)
        self.events.append(event)
        self.say(event)
        return event

    def _changed(self, key: str, value: object) -> bool:
        if self._seen.get(key, object()) == value:
            return False
        self._seen[key] = value
        return True

    def poll(self, job_ids: Iterable[str]) -> None:
        """Look once at the host, the guest and the jobs; note what changed."""
        self._host()
        self._guest()
        for job_id in job_ids:
            record = self.registry.get(job_id, with_history=True)
            if record is not None:
                self._job(record)

    def _host(self) -> None:
        raw = self.client.get(host_key(self.host))
        if raw is None:
            return
        beat = HostHeartbeat.model_validate_json(raw)
        if self._changed("host.action", beat.last_action) and beat.last_action:
            self.note("host", f"agent: {beat.last_action}", "vm")
        if self._changed("host.vm", beat.vm_state):
            self.note("host", f"VM {beat.vm_state}", "vm")

    def _guest(self) -> None:
        raw = self.client.get(worker_key(self.guest_worker))
        beat = WorkerHeartbeat.model_validate_json(raw) if raw else None
        if beat is None:
            if self._changed("guest", None) and self.first_beat is not None:
                self.note("guest", f"{self.guest_worker}: no heartbeat", "beat")
            return
        if self.first_beat is None:
            self.first_beat = beat
        proven = [b.backend for b in beat.backends]
        shown = (tuple(beat.queues), tuple(proven))
        if self._changed("guest", shown):
            self.note("guest", f"{beat.hostname}: proven {', '.join(proven) or 'nothing'}, "
                      f"serving {', '.join(beat.queues)}", "beat")  # fmt: skip
            for problem in beat.problems:
                self.note("guest", f"  {problem.backend} {problem.status}: {problem.reason}")

    def _job(self, record: JobRecord) -> None:
        percent = round(record.progress.percent) if record.progress else None
        state = (record.state.value, record.queue, record.worker)
        if self._changed(f"job.{record.id}", state):
            where = f" on {record.queue}" if record.queue else ""
            by = (
                f" by {record.worker}" if record.worker and record.state is JobState.STAGING else ""
            )
            self.note("recorder", f"job {record.id[:8]} {record.state.value}{where}{by}", "job")
        step = None if percent is None else percent // 25 * 25
        if step and self._changed(f"progress.{record.id}", step):
            self.note("guest", f"job {record.id[:8]} encoding: {percent}%", "job")

    def first(self, kind: str, words: str, after: float = 0.0) -> Event | None:
        """The first event of ``kind`` at or after ``after`` whose text holds ``words``."""
        for event in self.events:
            if event.kind == kind and event.at >= after and words in event.what:
                return event
        return None
