"""A detached child: its own session, stdout discarded, stderr appended to a log."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.procs import wait_for
from worker.errors import ProcessError
from worker.spawn import spawn_detached


def test_the_child_runs_in_its_own_session_and_appends_its_stderr(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir()
    log.write_text("before\n")
    out = tmp_path / "out"
    code = (
        "import os, sys; sys.stdout.write('to devnull'); sys.stderr.write('to the log\\n'); "
        f"open({str(out)!r}, 'w').write(f'{{os.getsid(0)}} {{os.getppid()}}')"
    )
    pid = spawn_detached([sys.executable, "-c", code], log=log)
    assert wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 30)
    sid, _ = out.read_text().split()
    assert int(sid) == pid != os.getsid(0)
    assert log.read_text() == "before\nto the log\n"


def test_an_unwritable_log_does_not_stop_the_child(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = tmp_path / "out"
    code = f"open({str(out)!r}, 'w').write('ran')"
    pid = spawn_detached([sys.executable, "-c", code], log=blocker / "logs" / "x.log")
    assert wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 30)
    assert out.read_text() == "ran"


def test_a_missing_program_is_a_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match=r"cannot start .*/no-such-program"):
        spawn_detached([str(tmp_path / "no-such-program")])
