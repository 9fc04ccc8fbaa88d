"""A worker whose recordings live on an SFTP `recorder` location: its config and waits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from worker.broker.registry import JobRecord, Registry
from worker.jobs import JobState


def toml_value(value: object) -> str:
    """A TOML literal for a str, int, float, bool or list of them (JSON's forms are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def sftp_location(
    *, host: str, port: int, user: str, key_file: Path, known_hosts: Path, root: Path, **extra: Any
) -> dict[str, Any]:
    """An `[staging.locations.recorder]` table for an sshd serving ``root``."""
    return {
        "kind": "sftp", "host": host, "port": port, "user": user,
        "key_file": str(key_file), "known_hosts": str(known_hosts), "root": str(root),
        "connect_timeout": 5, "io_timeout": 10, **extra,
    }  # fmt: skip


def write_worker_config(
    path: Path,
    *,
    scratch: Path,
    location: dict[str, Any],
    staging: dict[str, Any] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
    top: dict[str, Any] | None = None,
) -> Path:
    """A kamado TOML config: scratch, one SFTP location `recorder`, extra sections."""
    lines = [f"{k} = {toml_value(v)}" for k, v in (top or {}).items()]
    lines += ["[staging]", f"scratch_dir = {toml_value(str(scratch))}", "min_free_mb = 0"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (staging or {}).items()]
    lines += ["", "[staging.locations.recorder]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in location.items()]
    for name, table in (sections or {}).items():
        lines += ["", f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_final(registry: Registry, job_ids: list[str], timeout: float) -> dict[str, JobRecord]:
    """Wait until every job is final; return their records (with history)."""
    deadline = time.monotonic() + timeout
    while True:
        records = {j: registry.get(j, with_history=True) for j in job_ids}
        if all(r is not None and r.state.final for r in records.values()):
            return {j: r for j, r in records.items() if r is not None}
        if time.monotonic() > deadline:
            states = {j: (r.state.value if r else None) for j, r in records.items()}
            raise AssertionError(f"jobs not final after {timeout}s: {states}")
        time.sleep(0.1)


def state_of(registry: Registry, job_id: str) -> JobState | None:
    """The job's state now, or None when the registry does not know it."""
    record = registry.get(job_id)
    return record.state if record else None
