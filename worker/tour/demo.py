"""`kamado demo --topology`: the three-box tour for a person, on one machine.

Runs both acts of worker/tour/acts.py in a temporary directory, printing each role's
step as it happens, then removes everything it made: the namespaces and every process
in them (QEMU too), the directory. The guest kit (the kernel and its initramfs) stays in
its cache directory for the next run.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from worker.errors import KamadoError
from worker.tour import acts, rig
from worker.tour.acts import Act
from worker.tour.watch import Event, Watch

BOX_STYLE = {"recorder": "cyan", "host": "magenta", "guest": "green"}


class TourUnavailable(KamadoError):
    """This machine lacks something the tour needs (the message says what and how)."""


def _act_json(name: str, act: Act) -> dict[str, Any]:
    record = act.record
    return {
        "act": name,
        "job_id": act.job_id,
        "state": record.state.value,
        "worker": record.worker,
        "backend": record.backend,
        "output": str(act.output),
        "attempts": [a.outcome for a in record.history],
        "hook_to_verified_s": round(act.hook_to_verified, 1),
        "boot_to_first_heartbeat_s": round(act.boot_to_beat, 1),
    }


def run_tour(console: Console, *, as_json: bool = False) -> dict[str, Any]:
    """Both acts; returns what they measured. Raises TourUnavailable or TourError."""
    why = rig.missing()
    if why:
        raise TourUnavailable(f"the three-box tour cannot run here: {why}")
    base = Path(tempfile.mkdtemp(prefix="kamado-tour-"))

    def say(event: Event) -> None:
        if as_json:
            return
        style = BOX_STYLE.get(event.box, "white")
        console.print(f"[dim]{event.at:7.1f}s[/] [{style}]{event.box:>8}[/]  {escape(event.what)}",
                      highlight=False, soft_wrap=True)  # fmt: skip

    try:
        with rig.Topology(base, say=lambda text: say(Event(0.0, "tour", text))) as topo:
            assert topo.client is not None and topo.registry is not None
            watch = Watch(topo.client, topo.registry, "host", rig.GUEST_WORKER, say)
            one = acts.act_one(topo, watch)
            say(Event(watch.now(), "tour", "act two: a second recording; QEMU dies mid-encode"))
            two = acts.act_two(topo, watch)
            events = [asdict(e) for e in watch.events]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"acts": [_act_json("one", one), _act_json("two", two)], "events": events}
