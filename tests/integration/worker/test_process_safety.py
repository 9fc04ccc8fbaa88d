"""Children started by worker/process.py die with their parent, with no Python after fork."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.media import Clips
from tests.support.procs import pids_with, wait_for
from worker import process
from worker.errors import ProcessError

pytestmark = pytest.mark.integration

# A parent as busy as a worker: threads running, then each kind of child started from a
# thread other than the main one (the lease, stderr-drain and notify threads of a real
# pool child run meanwhile). It prints the children's pids, then waits to be killed.
PARENT = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    from worker import process

    clip, out = sys.argv[1], sys.argv[2]
    stop = threading.Event()
    for n in range(4):
        threading.Thread(target=stop.wait, daemon=True).start()
    found = {}

    def start():
        argv = ["ffmpeg", "-nostdin", "-y", "-stream_loop", "-1", "-re", "-i", clip,
                "-c:v", "libx264", "-preset", "veryslow", "-f", "mp4", out]
        found["supervised"] = process.Supervised(argv).__enter__().pid
        found["piped"] = process.Piped(["cat"]).pid
        found["daemon"] = process.Daemon(["sleep", "300"]).pid
        print(json.dumps(found), flush=True)
        stop.wait()

    threading.Thread(target=start, name="task").start()
    while True:
        time.sleep(1)
    """
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_a_threaded_parent_takes_ffmpeg_and_every_other_child_with_it(
    clips: Clips, tmp_path: Path
) -> None:
    out = tmp_path / "出力 (kill -9).mp4"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(clips.long_1080i), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert parent.stdout is not None
        children = json.loads(parent.stdout.readline())
        assert wait_for(lambda: pids_with(str(out)), timeout=60), "ffmpeg never started"
        assert pids_with(str(out)) == [children["supervised"]]
        assert all(alive(pid) for pid in children.values())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_for(lambda: not any(alive(pid) for pid in children.values()), timeout=10), {
            kind: pid for kind, pid in children.items() if alive(pid)
        }
        assert pids_with(str(out)) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40),
        max_size=6,
    )
)
def test_every_argument_reaches_the_program_exactly_as_given(args: list[str]) -> None:
    # Arguments that look like options ("-h", "--pdeathsig") must not reach setpriv.
    argv = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *args]
    result = process.run(argv, timeout=30, check=True)
    assert json.loads(result.stdout) == args


def test_a_missing_program_is_named_in_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match=r"cannot run ffmpeg-does-not-exist: No such file"):
        process.run(["ffmpeg-does-not-exist", "-version"], timeout=10)
    with pytest.raises(ProcessError, match=r"cannot run \./missing"):
        process.Supervised(["./missing"], cwd=tmp_path).__enter__()
    script = tmp_path / "run me.sh"
    script.write_text('#!/bin/sh\necho ran "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    result = process.run(["./run me.sh", "-x"], timeout=10, cwd=tmp_path, check=True)
    assert result.stdout == "ran -x\n"
