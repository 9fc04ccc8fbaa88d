"""`kamado epgstation encode`: kamado behind an EPGStation encode preset.

EPGStation runs the preset's command with the recording in ``INPUT`` and the file it
expects in ``OUTPUT`` (see ../shared/reference/epgstation-real.md). The command submits
one job whose output is exactly ``OUTPUT`` (path-mapped like every source, so a worker
in the VM pulls the recording and pushes the MP4 back there), follows it with progress
lines on stdout (:mod:`scheduler.epgstation.lines`), and exits 0 only when the verified
output is at ``OUTPUT``. SIGINT (EPGStation's cancel and its timeout) cancels the job.
Each EPGStation encode is its own job: the id covers the output, and a job that ended
before with the same output is run again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from scheduler.control import cancel
from scheduler.delivery.deliverer import Deliverer
from scheduler.epgstation.lines import ProgressLines, describe
from scheduler.errors import PresetFailed, RecordingError
from scheduler.recorders import PresetInput, epgstation_encode_input
from scheduler.spool.durable import Spool
from scheduler.submission import Submission, prepare
from scheduler.waiting import waiting_reasons
from worker.broker.registry import JobRecord
from worker.errors import BrokerError, KamadoError
from worker.jobs import EncodeResult, JobState
from worker.settings.model import Settings, spool_dir

__all__ = ["EXIT_CANCELLED", "Stop", "run_preset"]

log = logging.getLogger("kamado.epgstation")

EXIT_CANCELLED = 130
# Between looks at a running job (an ending wakes the waiter at once).
POLL = 0.5
# Between tries of a broker that is away.
BROKER_RETRY = 2.0


class Stop:
    """Set by SIGINT or SIGTERM: EPGStation's cancel, its timeout, or a service stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = ""

    def install(self) -> None:
        """Route SIGINT and SIGTERM here (the main thread only)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when stopped."""
        return self.event.wait(seconds)

    @property
    def stopped(self) -> bool:
        """True once a signal came."""
        return self.event.is_set()


class Cancelled(Exception):
    """The preset was stopped before its job ended."""


@dataclass
class Preset:
    """One run of the preset command."""

    settings: Settings
    data: PresetInput
    sub: Submission
    lines: ProgressLines
    stop: Stop

    @property
    def job_id(self) -> str:
        return self.sub.job.id

    def _say(self, percent: float, text: str) -> None:
        self.lines.send(percent, text)

    # -- delivery -----------------------------------------------------------------------

    def deliver(self) -> Deliverer:
        """Submit the job, waiting (spooled) up to ``broker_wait`` for a broker that is away."""
        wait = self.settings.scheduler.epgstation.broker_wait
        deadline = time.monotonic() + wait
        spool = Spool(spool_dir(self.settings))
        spooled: Path | None = None
        while True:
            if self.stop.stopped:
                self._unspool(spool, spooled)
                raise Cancelled
            deliverer = Deliverer(
                self.settings, timeout=self.settings.scheduler.hook_connect_timeout
            )
            try:
                deliverer.state.ping()
                if spooled is None or self._take_back(spool, spooled):
                    deliverer.submit(self.sub)
                log.info("job %s submitted (output %s)", self.job_id, self.data.output)
                return deliverer
            except BrokerError as e:
                deliverer.close()
                if spooled is None:
                    spooled = self._spool(spool)
                    self._say(0.0, f"kamado: broker away ({e}); waiting up to {wait:g} s")
                if time.monotonic() >= deadline:
                    if self._unspool(spool, spooled):
                        raise BrokerError(
                            f"broker unreachable for {wait:g} s "
                            f"(scheduler.epgstation.broker_wait): {e}; job {self.job_id} "
                            "not submitted"
                        ) from None
                    # delivered meanwhile by the scheduler service, but out of reach now
                    raise BrokerError(
                        f"broker unreachable: {e}; job {self.job_id} may run without "
                        f"EPGStation: `kamado cancel {self.job_id}`"
                    ) from None
                self.stop.wait(BROKER_RETRY)

    def _spool(self, spool: Spool) -> Path | None:
        try:
            return spool.put(self.sub)
        except KamadoError as e:  # the preset keeps trying on its own
            log.warning("could not spool job %s: %s", self.job_id, e)
            return None

    def _take_back(self, spool: Spool, spooled: Path) -> bool:
        """True when the spooled entry was still there (and is now ours to submit)."""
        with spool.drain_lock(blocking=True):
            if not spooled.exists():
                return False  # the scheduler service delivered it
            spooled.unlink()
            return True

    def _unspool(self, spool: Spool, spooled: Path | None) -> bool:
        """Remove the spooled entry; False when somebody delivered it already."""
        if spooled is None:
            return True
        with spool.drain_lock(blocking=True):
            if not spooled.exists():
                return False
            spooled.unlink()
            return True

    # -- following ----------------------------------------------------------------------

    def follow(self, deliverer: Deliverer) -> JobRecord:
        """Progress lines until the job is final; raises Cancelled on a signal."""
        registry = deliverer.registry
        shown_outage = False
        with registry.endings() as endings:
            while not self.stop.stopped:
                try:
                    record = registry.get(self.job_id)
                    if record is None:
                        raise PresetFailed(f"job {self.job_id} vanished from the registry")
                    if record.state.final:
                        return record
                    waiting = ""
                    if record.state is JobState.QUEUED:
                        pairs = [(record.id, record.queue)]
                        waiting = waiting_reasons(registry, deliverer.state, pairs).get(
                            record.id, ""
                        )
                    self._say(*describe(record.state, record.progress, waiting))
                    shown_outage = False
                except BrokerError as e:  # jobs survive a broker restart: wait it out
                    if not shown_outage:
                        self._say(self.lines.last[0] if self.lines.last else 0.0,
                                  f"kamado: broker away ({e}); the job goes on")  # fmt: skip
                        shown_outage = True
                    self.stop.wait(BROKER_RETRY)
                    continue
                endings.wait(POLL)
        raise Cancelled

    def cancel(self, deliverer: Deliverer) -> str:
        """Cancel the job and wait for it to stop; what became of it."""
        wait = self.settings.scheduler.epgstation.cancel_wait
        try:
            answer = cancel(deliverer.registry, deliverer.state, self.job_id)
        except KamadoError as e:
            return f"could not cancel job {self.job_id}: {e}"
        deadline = time.monotonic() + wait
        record = None
        while time.monotonic() < deadline:
            try:
                record = deliverer.registry.get(self.job_id)
            except BrokerError:
                record = None
            if record is not None and record.state.final:
                break
            time.sleep(0.2)
        if record is not None and record.state is JobState.DONE:
            # it finished as the cancel came: EPGStation deletes OUTPUT, and so do we
            Path(self.data.output).unlink(missing_ok=True)
            return f"job {self.job_id} finished as it was cancelled; output removed"
        state = record.state.value if record is not None else answer
        return f"job {self.job_id} {state}"

    # -- the end --------------------------------------------------------------------------

    def verified(self, record: JobRecord) -> EncodeResult:
        """The result when the job is done and its output is at OUTPUT, else PresetFailed."""
        if record.state is not JobState.DONE or not record.result:
            reason = record.error or record.state.value
            raise PresetFailed(f"job {self.job_id} {record.state.value}: {reason}")
        result = EncodeResult.model_validate(record.result)
        if result.output != self.sub.job.output:
            raise PresetFailed(
                f"job {self.job_id} wrote {result.output}, not EPGStation's OUTPUT "
                f"{self.sub.job.output}"
            )
        output = Path(self.data.output)
        try:
            size = output.stat().st_size
        except OSError as e:
            raise PresetFailed(f"{output}: the job is done but OUTPUT is not there ({e})") from None
        if size != result.size_bytes:
            raise PresetFailed(
                f"{output}: {size} bytes, but the verified output was {result.size_bytes}"
            )
        return result


def preset_submission(
    settings: Settings, data: PresetInput, profile: str | None, cwd: Path | None = None
) -> Submission:
    """The job for one preset call: output OUTPUT, never held, a job that ended run again."""
    sub = prepare(
        settings,
        data.path,
        origin="epgstation",
        recording=data.recording,
        profile=profile,
        output=data.output,
        cwd=cwd,
    )
    if sub is None:  # only failed recordings are skipped, and EPGStation encodes none
        raise RecordingError(f"{data.path}: skipped by the config", path=data.path)
    # EPGStation asked for this encode: it is not held for damage, only flagged.
    return sub.model_copy(update={"held": False, "force": True})


def exact_output(settings: Settings) -> Settings:
    """The settings with ``encode.on_conflict = "refuse"``: OUTPUT is never renamed."""
    encode = settings.encode.model_copy(update={"on_conflict": "refuse"})
    return settings.model_copy(update={"encode": encode})


def run_preset(
    settings: Settings,
    env: Mapping[str, str],
    *,
    profile: str | None,
    lines: ProgressLines,
    stop: Stop,
) -> int:
    """The preset command's whole run; the exit code. Bad input raises its KamadoError."""
    data = epgstation_encode_input(env)
    settings = exact_output(settings)
    sub = preset_submission(settings, data, profile)
    preset = Preset(settings, data, sub, lines, stop)
    lines.send(0.0, f"kamado: job {sub.job.id} ({sub.job.profile})")
    try:
        deliverer = preset.deliver()
    except Cancelled:
        log.error("cancelled (%s) before job %s was submitted", stop.signal, sub.job.id)
        return EXIT_CANCELLED
    try:
        try:
            record = preset.follow(deliverer)
        except Cancelled:
            log.error("cancelled (%s): %s", stop.signal, preset.cancel(deliverer))
            return EXIT_CANCELLED
        result = preset.verified(record)
    finally:
        deliverer.close()
    speed = f", {result.duration_s / result.encode_seconds:.1f}x" if result.encode_seconds else ""
    lines.send(1.0, f"kamado: done on {result.backend}{speed}")
    log.info("job %s done: %s (%d bytes)", sub.job.id, data.output, result.size_bytes)
    return 0
