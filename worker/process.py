"""The one place kamado starts subprocesses: argv lists, own process group, kill the group.

Every child runs in a new session (its own process group) and, where util-linux's
``setpriv`` exists (every Linux), is started through ``setpriv --pdeathsig KILL --``, so
the kernel kills it when the thread that started it dies: a killed Celery pool child
takes ffmpeg with it. No Python runs between fork and exec (``preexec_fn`` is unsafe in
a process with threads, as every worker is). Cancel, stall and time limits kill the
whole group. Results carry a bounded stderr tail.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from worker.errors import ProcessError, ProcessTimeout

__all__ = ["last_line", "run"]

STDERR_TAIL_LINES = 40


@dataclass(frozen=True)
class Result:
    """What a finished process left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr_tail: str
    seconds: float


def _setpriv() -> str | None:
    return shutil.which("setpriv")


def exec_argv(argv: list[str], env: Mapping[str, str], cwd: Path | None) -> list[str]:
    """The argv actually executed: ``argv`` behind ``setpriv --pdeathsig KILL --``.

    The program is resolved first (on the child's PATH, or against ``cwd``), so a missing
    one is still an OSError here, named as before, and not an exit code from setpriv.
    """
    program = argv[0]
    if os.sep in program:
        where = Path(program) if cwd is None else Path(cwd, program)
        if not os.access(where, os.X_OK) or where.is_dir():
            raise FileNotFoundError(2, "No such file or directory (or not executable)", program)
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(2, "No such file or directory", program)
    setpriv = _setpriv()
    if setpriv is None:  # not Linux: no parent-death signal, the group kill still holds
        return list(argv)
    # PR_SET_PDEATHSIG follows the thread that forked: the kernel SIGKILLs the child when
    # that thread (a pool child's task thread, or the whole process) is gone. setpriv
    # execs the program under the name given, found on the same PATH.
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def _child_env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    if env:
        merged.update(env)
    return merged


def _popen(
    argv: list[str], env: Mapping[str, str] | None, cwd: Path | None, **kwargs: Any
) -> subprocess.Popen[bytes]:
    merged = _child_env(env)
    return subprocess.Popen(
        exec_argv(argv, merged, cwd), env=merged, cwd=cwd, start_new_session=True, **kwargs
    )


def run(
    argv: list[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = False,
) -> Result:
    """Run a short command to completion and return its output; kill its group on timeout."""
    started = time.monotonic()
    try:
        proc = _popen(
            argv,
            env,
            cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        raise ProcessError(f"cannot run {argv[0]}: {e.strerror or e}", argv=argv) from e
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as e:
        kill_group(proc)
        proc.communicate()
        raise ProcessTimeout(
            f"{Path(argv[0]).name} did not finish within {timeout:g} s and was killed", argv=argv
        ) from e
    except BaseException:
        kill_group(proc)
        raise
    tail = _tail(err.decode("utf-8", "replace"))
    result = Result(
        argv=argv,
        returncode=proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr_tail=tail,
        seconds=time.monotonic() - started,
    )
    if check and proc.returncode != 0:
        raise ProcessError(
            f"{Path(argv[0]).name} exited with {proc.returncode}: {last_line(tail)}",
            argv=argv,
            returncode=proc.returncode,
            stderr_tail=tail,
        )
    return result


class Supervised:
    """A long-running child whose stdout lines are read as they come (ffmpeg -progress).

    Use as a context manager: leaving the block by any path (exception, cancel, soft time
    limit) kills the child's whole process group and reaps it.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = argv
        self._env = env
        self._cwd = cwd
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_thread: threading.Thread | None = None
        self.started = 0.0

    def __enter__(self) -> Supervised:
        try:
            self._proc = _popen(
                self.argv,
                self._env,
                self._cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as e:
            raise ProcessError(
                f"cannot run {self.argv[0]}: {e.strerror or e}", argv=self.argv
            ) from e
        self.started = time.monotonic()
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name="stderr-drain", daemon=True
        )
        self._stderr_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            kill_group(self._proc)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        if self._proc is not None:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()

    @property
    def pid(self) -> int:
        """The child's pid, which is also its process-group id."""
        assert self._proc is not None
        return self._proc.pid

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)

    def lines(self, *, poll: float, on_idle: Callable[[], None]) -> Iterator[str]:
        """Yield stdout lines; call ``on_idle`` at least every ``poll`` seconds meanwhile.

        ``on_idle`` may raise (cancel, stall) to stop the child: the context manager then
        kills the group.
        """
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        os.set_blocking(fd, False)
        buffer = b""
        last_idle = time.monotonic()
        while True:
            ready, _, _ = select.select([fd], [], [], poll)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    yield raw.decode("utf-8", "replace").rstrip("\r")
            if time.monotonic() - last_idle >= poll:
                last_idle = time.monotonic()
                on_idle()
        if buffer:
            yield buffer.decode("utf-8", "replace")
        on_idle()

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the child to exit (after its stdout closed) and return its exit code."""
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired as e:
            kill_group(self._proc)
            raise ProcessTimeout(
                f"{Path(self.argv[0]).name} closed its output but did not exit", argv=self.argv
            ) from e
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        return code

    @property
    def stderr_tail(self) -> str:
        """The last lines ffmpeg wrote to stderr."""
        return "\n".join(self._stderr)


def kill_group(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the child's process group, then SIGKILL it after ``grace`` seconds; reap."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # Kill the whole group even when the leader is gone: its children may live on.
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while any process of the group still exists (for tests and the watchdog)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_running(pgid: int) -> bool:
    """True while a process of the group exists that is not a zombie (dead, unreaped).

    Reads /proc where it exists (Linux); elsewhere the same as :func:`group_alive`.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return group_alive(pgid)
    if not group_alive(pgid):
        return False
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def last_line(text: str) -> str:
    """The last non-empty line of a stderr tail (the usual reason ffmpeg gives)."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return "(no message)"


class Daemon:
    """A long-running helper process (embedded broker, worker) owned by this process."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = argv
        self.log = log
        try:
            out = log.open("ab") if log else None
            try:
                self._proc = _popen(
                    argv,
                    env,
                    cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out or subprocess.DEVNULL,
                    stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                )
            finally:
                if out:
                    out.close()
        except OSError as e:
            raise ProcessError(f"cannot run {argv[0]}: {e.strerror or e}", argv=argv) from e

    @property
    def pid(self) -> int:
        """The daemon's pid (and process-group id)."""
        return self._proc.pid

    def alive(self) -> bool:
        """True while the daemon runs."""
        return self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once it has ended."""
        return self._proc.poll()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the daemon's log file, for error messages."""
        if not self.log or not self.log.exists():
            return ""
        text = self.log.read_text("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 10.0) -> None:
        """Ask the daemon to stop, wait ``grace`` seconds, then kill its whole group."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(grace)
        kill_group(self._proc, grace=0.5)

    def kill(self) -> None:
        """SIGKILL the daemon's whole process group at once and reap it (no shutdown)."""
        _signal_group(self._proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5)
        # Its pool children, orphaned now, die at once but wait as zombies for init, which
        # may take a second or two to reap them: wait only until none of them runs.
        deadline = time.monotonic() + 5
        while group_running(self._proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)


class Piped:
    """A child this process talks to over its stdin and stdout (``ssh -s sftp``).

    Both pipes are unbuffered and enlarged to ``pipe_size`` where Linux allows, so bulk
    data crosses them in few system calls; stderr is drained into a bounded tail. Use as a
    context manager or call ``close()``: either kills the child's whole group and reaps it.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        pipe_size: int = 1024 * 1024,
    ) -> None:
        self.argv = argv
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        try:
            self._proc = _popen(
                argv,
                env,
                cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
            )
        except OSError as e:
            raise ProcessError(f"cannot run {argv[0]}: {e.strerror or e}", argv=argv) from e
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self.stdin: IO[bytes] = self._proc.stdin
        self.stdout: IO[bytes] = self._proc.stdout
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError, AttributeError):  # not Linux, or over the limit
                fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, pipe_size)
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name="stderr-drain", daemon=True
        )
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)

    @property
    def pid(self) -> int:
        """The child's pid, which is also its process-group id."""
        return self._proc.pid

    def poll(self) -> int | None:
        """The exit code once the child has ended, else None."""
        return self._proc.poll()

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the child to exit; its exit code, or None."""
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._stderr_thread.join(timeout=2)
        return code

    @property
    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr."""
        return "\n".join(self._stderr)

    def close(self, grace: float = 1.0) -> None:
        """Close stdin (a polite end), give the child ``grace`` seconds, then kill its group."""
        with contextlib.suppress(OSError):
            self.stdin.close()
        if grace > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(grace)
        kill_group(self._proc, grace=0.5)
        self._stderr_thread.join(timeout=2)
        for stream in (self.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> Piped:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
