"""The hook log: recorders discard a hook's output, so each hook and delivery adds a line.

``<state_dir>/logs/hooks.log`` tells an operator what happened to every recording a
recorder handed over: spooled by the hook, then submitted, already known, held, skipped
or set aside by the delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def log_line(state_dir: Path, text: str) -> None:
    """Append one line to the hook log; a hook never fails over its log."""
    try:
        directory = state_dir / "logs"
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        line = text.replace("\n", "\\n")
        with (directory / "hooks.log").open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"{stamp} {line}\n")
    except OSError:
        pass
