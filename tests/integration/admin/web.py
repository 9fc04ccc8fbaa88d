"""Small HTTP helpers for the admin tests: GET with optional basic auth, wait for a URL."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any


def get(url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET a URL; returns (status, body) for any HTTP answer, raises on no answer."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def get_json(url: str, auth: tuple[str, str] | None = None) -> Any:
    """GET a URL that must answer 200 with JSON."""
    status, body = get(url, auth)
    assert status == 200, f"{url}: HTTP {status}: {body[:300]!r}"
    return json.loads(body)


def wait_until_up(url: str, timeout: float, alive: Any = lambda: True) -> None:
    """Poll ``url`` until it answers at all (any status), while ``alive()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{url}: the server exited")
        try:
            get(url, timeout=1.0)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")
