"""Outputs of EPGStation's finish hook, registered in its library (EPGStation #83).

A job a `kamado hook epgstation` submitted while ``scheduler.epgstation.url`` is set is
remembered in the broker (``BrokerState.remember_registration``, so a restart of the scheduler
service forgets none). Each pass of `kamado scheduler run` uploads the outputs of the
remembered jobs that are done as ``encoded`` video files of their recording
(``POST /api/videos/upload`` with ``recordedId``), stores the new video file's id in the
job's result, and forgets the job. While EPGStation is away it tries again every
``register_retry`` seconds, for ``register_give_up`` seconds; a failed or cancelled job
is forgotten; every outcome goes to the service log and the hook log.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler.epgstation.api import EpgstationApi, EpgstationAway, EpgstationRefused, Upload
from scheduler.hooks.log import log_line
from scheduler.paths import unmap_target
from worker.broker.keys import EPGSTATION_PENDING
from worker.broker.registry import JobRecord, Registry
from worker.jobs import JobState
from worker.settings.model import Settings

__all__ = ["Registered", "Registrar"]

log = logging.getLogger("kamado.epgstation")


@dataclass(frozen=True)
class Registered:
    """What one pass did with one job."""

    job_id: str
    outcome: str  # registered, retry, refused, dropped, gave up
    detail: str = ""
    video_file_id: int | None = None


class Registrar:
    """Registers done outputs in EPGStation, a pass at a time (the scheduler service's chore)."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.config = settings.scheduler.epgstation
        self.registry = registry
        url = self.config.url
        self.api = EpgstationApi(url, timeout=self.config.request_timeout) if url else None

    def pending(self) -> dict[str, dict[str, float]]:
        """job id -> its registration's state."""
        raw = self.registry.call("read registrations", self.registry.client.hgetall,
                                 EPGSTATION_PENDING)  # fmt: skip
        entries = {}
        for job_id, text in raw.items():
            try:
                entries[job_id] = json.loads(text)
            except ValueError:
                entries[job_id] = {"since": time.time(), "next": 0.0, "tries": 0}
        return entries

    def run_once(self) -> list[Registered]:
        """Try every remembered job whose time has come."""
        if self.api is None:
            return []
        done = []
        now = time.time()
        for job_id, entry in self.pending().items():
            if entry.get("next", 0.0) > now:
                continue
            outcome = self._one(job_id, entry, now)
            if outcome is not None:
                done.append(outcome)
                self._tell(outcome)
        return done

    def _forget(self, job_id: str) -> None:
        self.registry.call("forget a registration", self.registry.client.hdel,
                           EPGSTATION_PENDING, job_id)  # fmt: skip

    def _one(self, job_id: str, entry: dict[str, float], now: float) -> Registered | None:
        record = self.registry.get(job_id)
        if record is None or record.state in (JobState.FAILED, JobState.CANCELLED):
            self._forget(job_id)
            state = record.state.value if record else "gone"
            return Registered(job_id, "dropped", f"the job is {state}: nothing to register")
        if record.state is not JobState.DONE:
            return None
        if (record.result or {}).get("epgstation_video_file_id") is not None:
            self._forget(job_id)
            return None
        try:
            video_id = self._upload(record)
        except EpgstationAway as e:
            if now - entry.get("since", now) >= self.config.register_give_up:
                self._forget(job_id)
                return Registered(job_id, "gave up", f"{e}; tried since "
                                  f"{self.config.register_give_up:g} s")  # fmt: skip
            entry = {**entry, "next": now + self.config.register_retry,
                     "tries": entry.get("tries", 0) + 1}  # fmt: skip
            self.registry.call("store a registration", self.registry.client.hset,
                               EPGSTATION_PENDING, job_id, json.dumps(entry))  # fmt: skip
            return Registered(job_id, "retry", f"{e}; again in {self.config.register_retry:g} s")
        except EpgstationRefused as e:
            self._forget(job_id)
            return Registered(job_id, "refused", str(e))
        stored = self.registry.add_to_result(job_id, {"epgstation_video_file_id": video_id})
        self._forget(job_id)
        detail = "" if stored else " (the job was reset since; its result not updated)"
        return Registered(job_id, "registered", detail, video_id)

    def _upload(self, record: JobRecord) -> int:
        assert self.api is not None
        recording = record.job.recording
        recorded = recording.recorded_id if recording else None
        if recorded is None or not recorded.isdigit():
            raise EpgstationRefused(f"EPGStation recorded id {recorded!r} is not a number")
        output = (record.result or {}).get("output") or record.job.output
        local = unmap_target(str(output), self.settings.scheduler.path_map)
        if local is None:
            raise EpgstationRefused(
                f"{output}: no [[scheduler.path_map]] maps it back to a path on this machine"
            )
        path = Path(local)
        if not path.is_file():
            raise EpgstationRefused(f"{path}: the output is not there to register")
        upload = Upload(
            recorded_id=int(recorded),
            path=path,
            parent_dir=self.config.parent_dir,
            view_name=self.config.view_name,
            sub_dir=self.config.sub_dir,
        )
        return self.api.upload(upload)

    def _tell(self, outcome: Registered) -> None:
        if outcome.outcome == "registered":
            text = (f"registered {outcome.job_id} as video file {outcome.video_file_id}"
                    f"{outcome.detail}")  # fmt: skip
            log.info("epgstation: %s", text)
        else:
            text = f"{outcome.outcome} {outcome.job_id}: {outcome.detail}"
            log.warning("epgstation: %s", text)
        log_line(self.settings.state_dir, f"epgstation: {text}")
