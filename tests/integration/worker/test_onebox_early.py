"""`kamado encode`'s head start: the broker and worker its quick path spawns are the ones
the session uses, and a command that fails after spawning them leaves nothing running.

Real `kamado encode` processes on the embedded broker, a real worker, real ffmpeg.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.worker.test_cli import kamado
from tests.support.media import Clips, sha256

pytestmark = pytest.mark.integration


def running_under(state: Path) -> list[str]:
    """Command lines of processes that belong to this state directory (broker, worker)."""
    found = subprocess.run(["pgrep", "-af", str(state)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def test_the_session_adopts_the_pair_the_quick_path_spawned(clips: Clips, tmp_path: Path) -> None:
    rec = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "a.ts"))
    out = tmp_path / "out"
    out.mkdir()
    spans = tmp_path / "spans.jsonl"
    for n in range(2):  # the first call probes; both must start exactly one worker
        result = kamado(
            "encode", str(rec), "-o", str(out), "--json", "--force", "--jobs=1",
            home=tmp_path, KAMADO_WORKER__BACKENDS='["x264"]', KAMADO_SPANS=str(spans),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert [r["state"] for r in json.loads(result.stdout)] == ["done"]
        steps = [json.loads(line)["step"] for line in spans.read_text().splitlines()]
        assert steps.count("session.head_start") == n + 1, steps
    log = (tmp_path / ".local/state/kamado/logs/worker.log").read_text()
    assert log.count(" ready.") == 2, log[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4"]
    assert not running_under(tmp_path / ".local/state/kamado")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--profile", "nope"), "unknown profile 'nope'"),
        (("--priority", "12"), "--priority"),
    ],
)
def test_a_command_that_fails_after_the_head_start_leaves_nothing_running(
    clips: Clips, tmp_path: Path, extra: tuple[str, str], words: str
) -> None:
    rec = Path(shutil.copy2(clips.isdb_1080i, tmp_path / "b.ts"))
    digest = sha256(rec)
    out = tmp_path / "out"
    out.mkdir()
    state = tmp_path / ".local/state/kamado"
    result = kamado("encode", str(rec), "-o", str(out), *extra, home=tmp_path)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    give_up = time.monotonic() + 10
    while running_under(state) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert not running_under(state)
    assert not (tmp_path / ".local").exists(), "the head start's state directory was left"
    assert list(out.iterdir()) == []
    assert sha256(rec) == digest
