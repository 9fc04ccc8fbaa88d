"""Which queues a guest worker serves and which backends it may use, from what was proven."""

from __future__ import annotations

from dataclasses import dataclass, field

from guest_agent.probe import GuestProbe
from worker.backends.capabilities import Status
from worker.broker.heartbeat import BackendProblem
from worker.errors import NothingToServe
from worker.profiles import QUEUE_CPU, QUEUE_GPU, Backend
from worker.settings.model import Settings


@dataclass(frozen=True)
class Plan:
    """A guest worker's queues and backends, and the backends it may ever come back to."""

    queues: list[str]
    usable: list[Backend]
    candidates: list[Backend]
    fps: dict[str, float | None]
    problems: list[BackendProblem] = field(default_factory=list)
    claimed: bool = False

    @property
    def serves_gpu(self) -> bool:
        """True when encode.gpu is consumed."""
        return QUEUE_GPU in self.queues

    @property
    def software(self) -> list[Backend]:
        """The usable software backends (kept while the GPU is suspended)."""
        return [b for b in self.usable if not b.hardware]


def problems(probe: GuestProbe) -> list[BackendProblem]:
    """Every backend the probe did not prove, with ffmpeg's reason and its kind."""
    return [
        BackendProblem(backend=b.value, status=r.status.value, kind=r.kind, reason=r.reason)
        for b, r in probe.backends.items()
        if r.status is not Status.PROVEN
    ]


def summary(probe: GuestProbe) -> str:
    """One line per failed or absent backend, for an error message."""
    parts = [f"{p.backend} {p.status} ({p.kind or 'n/a'}): {p.reason}" for p in problems(probe)]
    return "; ".join(parts) or "no backend was probed"


def make_plan(settings: Settings, probe: GuestProbe) -> Plan:
    """The queues to consume: encode.gpu only with a hardware backend, encode.cpu if allowed.

    With ``worker.backends = "auto"`` only proven backends are used. An explicit list is
    the operator's claim and is used as given (its probe result is still reported, and a
    run of hardware failures still takes the GPU away until it proves itself).
    """
    claimed = settings.worker.backends != "auto"
    if settings.worker.backends == "auto":
        candidates = list(Backend)
        usable = [b for b in candidates if b in probe.proven]
    else:
        candidates = [Backend(b) for b in settings.worker.backends]
        usable = list(candidates)
    hardware = [b for b in usable if b.hardware]
    software = [b for b in usable if not b.hardware]
    queues = []
    if hardware:
        queues.append(QUEUE_GPU)
    if settings.guest.take_software_work and software:
        queues.append(QUEUE_CPU)
    if not queues:
        if settings.guest.take_software_work:
            why = "and no software backend works either"
        else:
            why = "and guest.take_software_work is false"
        raise NothingToServe(
            f"nothing to serve: no hardware backend is proven on this machine {why} "
            f"({summary(probe)}); once fixed, start it again (its unit does not restart "
            "on this exit code 3)"
        )
    fps = {b.value: r.fps for b, r in probe.backends.items() if b in usable}
    return Plan(
        queues=queues,
        usable=usable,
        candidates=candidates,
        fps={b.value: fps.get(b.value) for b in usable},
        problems=problems(probe),
        claimed=claimed,
    )
