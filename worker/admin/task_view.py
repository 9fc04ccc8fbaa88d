"""What Flower shows for a kamado task: the recording, kamado's state words, worker, backend.

Flower calls :func:`worker.admin.flower.format_task` with a copy of its task object before it
renders the tasks page or a task page; this module turns that object (Celery's fields,
with kamado's in its ``result`` as worker/admin/task_events.py sends them, or the worker's
return value once it is done) into words.
Celery's state decides the family (a SUCCESS is done, a FAILURE failed, a REVOKED moved
or cancelled) and kamado's fields add the detail, so a stale progress field never makes
a finished task look busy.
"""

from __future__ import annotations

import re
from typing import Any

from worker.admin.task_events import MOVED, decode

__all__ = ["size"]

# Celery's saferepr (the args of task events) writes a string as '...' with only its
# single quotes escaped (\'); backslashes stay as they are, so this is not Python syntax.
_FIELDS = {
    name: re.compile(rf"'{name}': '((?:\\'|[^'])*)'") for name in ("id", "source", "profile")
}
# Numbers and words in the repr of a finished task's return value (an EncodeResult).
_RESULT = {
    "backend": re.compile(r"'backend': '([^']*)'"),
    "size_bytes": re.compile(r"'size_bytes': ([0-9.]+)"),
    "duration_s": re.compile(r"'duration_s': ([0-9.]+)"),
    "encode_s": re.compile(r"'encode_seconds': ([0-9.]+)"),
    "fps": re.compile(r"'average_fps': ([0-9.]+)"),
}
# JobFailed('...') or JobFailed("..."): the message inside an exception's repr.
_EXCEPTION = re.compile(r"^\w+\((['\"])(.*)\1\)$", re.S)
RUNNING_WORDS = ("staging", "encoding", "verifying")


def _field(text: str, name: str) -> str | None:
    match = _FIELDS[name].search(text)
    return match.group(1).replace("\\'", "'") if match else None


def file_name(source: str) -> str:
    """The recording's file name from a path or URI."""
    return source.rstrip("/").rsplit("/", 1)[-1]


def describe_args(args: str) -> str | None:
    """``<file name> · <profile> · job <id>`` from an encode task's args repr, or None."""
    job_id = _field(args, "id")
    source = _field(args, "source")
    profile = _field(args, "profile")
    if not (job_id and source and profile):
        return None
    return f"{file_name(source)} · {profile} · job {job_id}"


def duration(seconds: float | None) -> str:
    """A short duration: 36 s, 4 min 05 s, 1 h 02 min."""
    if seconds is None:
        return ""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def size(count: float | None) -> str:
    """Bytes as MB or GB with one decimal."""
    if count is None:
        return ""
    if count >= 1e9:
        return f"{count / 1e9:.1f} GB"
    return f"{count / 1e6:.1f} MB"


def exception_text(exception: str | None) -> str:
    """The message inside Flower's exception repr (``JobFailed('…')`` → ``…``)."""
    if not exception:
        return ""
    match = _EXCEPTION.match(exception.strip())
    return match.group(2) if match else exception


def running_words(fields: dict[str, Any]) -> str:
    """``encoding 37 % · 39 fps · ETA 36 s · vaapi`` (parts missing when unknown)."""
    word = str(fields.get("state") or "started")
    parts = [word]
    if word == "encoding" and fields.get("percent") is not None:
        parts[0] = f"encoding {float(fields['percent']):.0f} %"
    if word == "encoding" and fields.get("fps"):
        parts.append(f"{float(fields['fps']):.0f} fps")
    if word == "encoding" and fields.get("eta_s") is not None:
        parts.append(f"ETA {duration(float(fields['eta_s']))}")
    if fields.get("backend"):
        parts.append(str(fields["backend"]))
    return " · ".join(parts)


def done_words(fields: dict[str, Any]) -> str:
    """``done · vaapi · 12.3 MB · 1 min 00 s of video in 15 s · 4.0× realtime``."""
    parts = ["done"]
    if fields.get("backend"):
        parts.append(str(fields["backend"]))
    if fields.get("size_bytes") is not None:
        parts.append(size(float(fields["size_bytes"])))
    video, took = fields.get("duration_s"), fields.get("encode_s")
    if video and took:
        parts.append(f"{duration(float(video))} of video in {duration(float(took))}")
        parts.append(f"{float(video) / float(took):.1f}× realtime")
    return " · ".join(parts)


def kamado_fields(task: Any) -> dict[str, Any]:
    """kamado's facts about a task: the fields its events carry, or its return value's."""
    result = getattr(task, "result", None)
    sent = decode(result)
    if sent is not None:
        return sent
    if not isinstance(result, str):
        return {}
    found: dict[str, Any] = {}
    for name, pattern in _RESULT.items():
        match = pattern.search(result)
        if match:
            found[name] = match.group(1) if name == "backend" else float(match.group(1))
    return found


def state_words(celery_state: str, fields: dict[str, Any], exception: str | None = None) -> str:
    """kamado's words for a task: queued, encoding 37 % …, done …, failed: reason, …"""
    word = str(fields.get("state") or "")
    reason = str(fields.get("reason") or "") or exception_text(exception)
    if celery_state == "SUCCESS":
        return done_words(fields)
    if celery_state == "FAILURE":
        return f"failed: {reason}" if reason else "failed"
    if celery_state == "REVOKED":
        if word == MOVED:
            target = fields.get("moved_to") or "another queue"
            return f"moved → {target}: {reason}" if reason else f"moved → {target}"
        # kamado's reasons say when: "while it waited", "while it ran", "before it ran".
        return f"cancelled {reason}" if reason else "cancelled"
    if celery_state == "RETRY":
        return f"retrying: {reason}" if reason else "retrying"
    if word in RUNNING_WORDS or celery_state == "STARTED":
        return running_words(fields)
    waiting = fields.get("waiting")
    return f"queued · waiting: {waiting}" if waiting else "queued"


def view(task: Any) -> dict[str, str]:
    """What the tasks page shows in its args and result columns for one encode task."""
    shown: dict[str, str] = {}
    args = getattr(task, "args", None)
    if isinstance(args, str) and (readable := describe_args(args)):
        shown["args"] = readable
    fields = kamado_fields(task)
    state = str(getattr(task, "state", "") or "")
    shown["result"] = state_words(state, fields, getattr(task, "exception", None))
    return shown
