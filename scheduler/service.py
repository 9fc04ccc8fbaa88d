"""`kamado scheduler run`: routing passes, the registry's reconciler and the spool drain.

One loop, three clocks: the spool is drained every ``scheduler.spool_poll`` seconds,
waiting jobs are re-routed every ``scheduler.routing.interval`` and the reconciler runs
every ``jobs.reconcile_interval``. A broker outage is logged and waited out; nothing in
the loop is fatal except losing the service lock.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from scheduler.delivery.deliverer import Deliverer, drain, report_unreadable
from scheduler.routing import plan
from scheduler.spool import store as spool_store
from scheduler.spool.durable import Entry, Spool
from scheduler.unserved import UnservedWatch
from scheduler.waiting import WaitingNotices
from worker.admin.task_events import MOVED, ended_fields, send_revoked, sender_name
from worker.errors import BrokerError, KamadoError
from worker.profiles import QUEUE_CPU, QUEUE_GPU
from worker.settings.model import Settings

log = logging.getLogger("kamado.scheduler")
# Seconds between looks for queues that hold work no worker consumes.
UNSERVED_INTERVAL = 10.0
# Seconds between looks for done outputs to register in EPGStation.
REGISTER_INTERVAL = 2.0


@dataclass
class Moved:
    """A job the routing pass sent to encode.cpu."""

    job_id: str
    reason: str


class Service:
    """The scheduler service on one broker and one spool."""

    def __init__(self, settings: Settings, deliverer: Deliverer, spool: Spool) -> None:
        self.settings = settings
        self.deliverer = deliverer
        self.spool = spool
        self._last: dict[str, float] = {}
        self.unserved = UnservedWatch()
        self.notices = WaitingNotices()
        self._unreadable: set[str] = set()

    def route_once(self) -> list[Moved]:
        """One routing pass: move the jobs that finish sooner on software to encode.cpu."""
        from worker.broker.publish import publish

        state = self.deliverer.state
        messages = state.waiting(QUEUE_GPU)
        if not messages:
            return []
        snapshot = self.deliverer.snapshot
        cluster = snapshot.cluster()
        pending, jobs = snapshot.pending(messages)
        lookahead = self.settings.scheduler.routing.software_lookahead
        moves = plan(pending, cluster, lookahead=lookahead)
        by_id = {m.job_id: m for m in messages}
        moved = []
        for job_id in moves:
            if not state.move(by_id[job_id], job_id, QUEUE_CPU):
                continue  # a worker took it meanwhile
            new_task = publish(self.deliverer.app, jobs[job_id], QUEUE_CPU)
            hw = cluster.hardware
            reason = (
                "software finishes it before the hardware queue would reach it "
                f"(hardware busy for {min(hw.free_at):.0f} s, then the jobs ahead of it)"
                if hw.available
                else "no hardware worker up and none can be woken"
            )
            log.info("job %s moved to %s: %s", job_id, QUEUE_CPU, reason)
            old_task = by_id[job_id].task_id
            if old_task:
                fields = ended_fields(MOVED, reason, moved_to=QUEUE_CPU, next_task=new_task)
                send_revoked(self.deliverer.app, sender_name("scheduler"), old_task, fields)
            moved.append(Moved(job_id, reason))
        return moved

    def due(self, name: str, interval: float) -> bool:
        """True when the named chore last ran ``interval`` seconds ago or more."""
        at = time.monotonic()
        if at - self._last.get(name, -1e9) >= interval:
            self._last[name] = at
            return True
        return False

    def _deliverable(self) -> bool:
        """True when the spool holds an entry to deliver; warns of new unreadable ones once."""
        entries = self.spool.entries()
        self._unreadable &= {e.path.name for e in entries}  # forget the ones gone since
        unreadable = [e for e in entries if not e.readable]
        self._warn(unreadable)
        return len(unreadable) < len(entries)

    def _warn(self, unreadable: list[Entry]) -> None:
        """Log each entry this user cannot deliver, once while it stays in the spool."""
        fresh = [e for e in unreadable if e.path.name not in self._unreadable]
        for entry in fresh:
            log.warning("spool: %s: %s", entry.path, entry.problem)
        report_unreadable(self.settings.state_dir, fresh)
        self._unreadable |= {e.path.name for e in fresh}

    def tick(self) -> None:
        """Run whichever chores are due."""
        from worker.broker.reconcile import reconcile

        sched = self.settings.scheduler
        if self.due("spool", sched.spool_poll) and self._deliverable():
            # never wait on a delivery a hook started: it lists the spool again when it ends
            result = drain(self.spool, self.deliverer, blocking=False)
            self._warn(result.unreadable)
            for done in result.delivered:
                log.info("spooled job %s delivered (%s, %s)", done.job.id, done.outcome, done.queue)
            if result.error:
                log.warning("spool: %d waiting; broker away: %s", result.remaining, result.error)
        if sched.routing.enabled and self.due("route", sched.routing.interval):
            self.route_once()
        if self.due("unserved", UNSERVED_INTERVAL):
            self.unserved.check(self.deliverer.registry, self.deliverer.state, time.monotonic())
            # Flower's task list: why each queued task waits (kamado status computes it).
            self.notices.send(self.deliverer.app, self.deliverer.registry, self.deliverer.state)
        if self.due("reconcile", self.settings.jobs.reconcile_interval):
            passed = reconcile(
                self.deliverer.app,
                self.deliverer.registry,
                grace=self.settings.jobs.lease_ttl,
                queues=[QUEUE_GPU, QUEUE_CPU],
            )
            if passed.requeued or passed.failed or passed.held:
                log.info("reconciler: requeued %s, failed %s, held %s (live, past their end)",
                         passed.requeued, passed.failed, passed.held)  # fmt: skip

    def register_loop(self, stop: threading.Event) -> None:
        """Register done outputs in EPGStation until ``stop`` (a thread of its own: an
        upload of a large file must not hold up delivery and routing)."""
        from scheduler.epgstation.register import Registrar

        registrar = Registrar(self.settings, self.deliverer.registry)
        log.info("registering EPGStation outputs in %s", self.settings.scheduler.epgstation.url)
        while not stop.is_set():
            try:
                registrar.run_once()
            except KamadoError as e:
                log.warning("epgstation registration: %s", e)
            stop.wait(REGISTER_INTERVAL)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; broker errors are logged and retried."""
        with self.spool.service_lock() as got:
            if not got:
                raise KamadoError(
                    f"another scheduler service already runs on spool {self.spool.directory}"
                )
            spool_store.share_locks(self.spool.directory)
            log.info("scheduler service running (spool %s)", self.spool.directory)
            registering = None
            if self.settings.scheduler.epgstation.url is not None:
                registering = threading.Thread(
                    target=self.register_loop, args=(stop,), name="epgstation", daemon=True
                )
                registering.start()
            step = min(self.settings.scheduler.spool_poll, self.settings.scheduler.routing.interval)
            while not stop.is_set():
                try:
                    self.tick()
                except BrokerError as e:
                    log.warning("broker unavailable: %s", e)
                    stop.wait(1.0)
                stop.wait(step)
            if registering is not None:
                registering.join(timeout=5.0)
