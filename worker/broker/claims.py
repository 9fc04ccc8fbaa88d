"""Output claims in the job registry: which job owns which output place, atomically.

Redis hashes keyed by a place's identity (see worker/outputs/view.py): the outputs (place
→ job id), the files kamado wrote there (place → fingerprint), and the recordings kamado
was given as sources (place → job id); plus each claiming job's source, for messages.
Claims are taken at submission and again by the worker before it writes, in one Lua
check-and-set each, so two jobs can never be given one output place.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.broker.keys import JOB_SOURCES, OUTPUTS, SOURCES, WRITTEN
from worker.broker.registry import Registry
from worker.broker.registry_scripts import CLAIM


@dataclass(frozen=True)
class ClaimAnswer:
    """What the registry said: ok (place is the job's now), source, taken or full."""

    status: str
    key: str = ""
    owner: str = ""


class Claims:
    """The output and source places the registry knows, on a registry's connection."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._claim = registry.client.register_script(CLAIM)

    def claim(
        self, job_id: str, source: tuple[str, str], mode: str, keys: list[str]
    ) -> ClaimAnswer:
        """Give the job the first of ``keys`` it already holds, else the first free one.

        ``source`` is the job's source as (its place, its spelling for messages).
        """
        status, key, owner = self.registry.call(
            "claim an output",
            self._claim,
            keys=[OUTPUTS, SOURCES, JOB_SOURCES],
            args=[job_id, source[0], mode, source[1], *keys],
        )
        return ClaimAnswer(str(status), str(key), str(owner))

    def owner(self, key: str) -> str | None:
        """The job that holds an output place, if any."""
        client = self.registry.client
        found = self.registry.call("read a claim", client.hget, OUTPUTS, key)
        return str(found) if found else None

    def source_owner(self, key: str) -> str | None:
        """The job that was given the recording at a place as its source, if any."""
        client = self.registry.client
        found = self.registry.call("read a source", client.hget, SOURCES, key)
        return str(found) if found else None

    def written(self, key: str) -> str | None:
        """The fingerprint of the file kamado last wrote at a place, if any."""
        client = self.registry.client
        found = self.registry.call("read a claim", client.hget, WRITTEN, key)
        return str(found) if found else None

    def mark_written(self, key: str, fingerprint: str) -> None:
        """Remember that the file now at ``key`` is one kamado wrote (it may replace it)."""
        client = self.registry.client
        self.registry.call("record a written output", client.hset, WRITTEN, key, fingerprint)

    def source_of(self, job_id: str) -> str:
        """A job's source as it was submitted, for messages naming both sides."""
        client = self.registry.client
        found = self.registry.call("read a claim", client.hget, JOB_SOURCES, job_id)
        return str(found) if found else f"job {job_id}"
