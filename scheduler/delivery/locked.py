"""One delivery per spool: hold the drain lock, wait out an absent broker, take late arrivals.

A hook that finds no delivery running takes the spool's drain lock itself and hands it
to the `spool flush` it starts (an inherited fd), so two hooks never both start one; a
hook that finds the lock held leaves its entry to the holder and returns. The holder
must then see that entry even when it was about to exit as the hook looked:

- a hook writes its entry *before* it tries the lock;
- every holder lists the spool again *after* it releases the lock, and when an entry
  it has not tried is there, takes the lock back, or leaves it to whoever took it
  first (who lists the spool after taking it).

So an entry written before a hook found the lock held is listed after that holder let
go: no entry is stranded by a delivery exiting just as a hook arrives. While the broker
is away, a hook's delivery retries for ``scheduler.delivery_retry`` seconds, picking up
what arrives meanwhile, then leaves the rest for the next hook, `kamado spool flush`
or the scheduler service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from scheduler.delivery.deliverer import Deliverer, Drained, drain_pass, report_unreadable
from scheduler.spool import store as spool_store
from scheduler.spool.durable import Spool

Pass = Callable[[Spool, Deliverer], Drained]


def _merge(total: Drained, one: Drained) -> None:
    total.delivered += one.delivered
    total.quarantined += one.quarantined
    total.skipped += one.skipped
    total.remaining, total.error, total.unreadable = one.remaining, one.error, one.unreadable
    total.seen |= one.seen


def _passes(
    spool: Spool, deliverer: Deliverer, total: Drained, retry_for: float, run: Pass,
    sleep: Callable[[float], None],
) -> None:  # fmt: skip
    """Drain until the broker took everything or ``retry_for`` seconds of retries passed."""
    deadline = time.monotonic() + retry_for
    wait = 0.5
    reported: set[str] = {e.path.name for e in total.unreadable}
    while True:
        one = run(spool, deliverer)
        _merge(total, one)
        fresh = [e for e in one.unreadable if e.path.name not in reported]
        report_unreadable(deliverer.settings.state_dir, fresh)
        reported |= {e.path.name for e in fresh}
        if not one.error or time.monotonic() + wait > deadline:
            return
        sleep(wait)
        wait = min(wait * 2, 5.0)


def deliver(
    spool: Spool,
    deliverer: Deliverer,
    lock_fd: int,
    *,
    retry_for: float = 0.0,
    run: Pass = drain_pass,
    sleep: Callable[[float], None] = time.sleep,
) -> Drained:
    """Deliver while holding the drain lock ``lock_fd`` (closed here) until nothing untried
    is left; entries that arrive meanwhile are delivered too."""
    total = Drained()
    fd: int | None = lock_fd
    while fd is not None:
        try:
            _passes(spool, deliverer, total, retry_for, run, sleep)
        finally:
            os.close(fd)
        if not spool.names() - total.seen:
            break
        fd = spool_store.try_lock(spool.directory, spool_store.DRAIN_LOCK)
    return total
