"""What the Flower admin tests share: a realtime ffmpeg and the tasks page's data.

The tasks page fills its table from ``/tasks/datatable`` (with kamado's format_task
applied), so reading that endpoint is reading what an admin sees.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from tests.integration.admin.web import get, get_json


def realtime_ffmpeg(directory: Path) -> Path:
    """An ffmpeg that reads its first input at realtime (so an encode lasts its length)."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "ffmpeg-realtime"
    wrapper.write_text('#!/bin/sh\nexec ffmpeg -readrate 1 "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


def tasks_page(base: str, auth: tuple[str, str], search: str = "") -> dict[str, dict[str, Any]]:
    """The rows of Flower's tasks page (as its JavaScript loads them), by task id."""
    fields = {"draw": 1, "start": 0, "length": 100, "search[value]": search}
    fields.update({"order[0][column]": 0, "columns[0][data]": "received"})
    query = urllib.parse.urlencode({**fields, "order[0][dir]": "desc"})
    page = get_json(f"{base}/tasks/datatable?{query}", auth)
    return {row["uuid"]: row for row in page["data"]}


def task_html(base: str, auth: tuple[str, str], task_id: str) -> str:
    """Flower's page of one task."""
    status, body = get(f"{base}/task/{task_id}", auth)
    assert status == 200, body[:300]
    return body.decode("utf-8")
