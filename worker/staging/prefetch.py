"""Pulling the next job's source in the background while the current one encodes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from worker.settings.staging import StagingSettings
from worker.staging.errors import LocationError
from worker.staging.files import ProgressCallback
from worker.staging.incoming import stage_in
from worker.staging.pull import discard, pull
from worker.staging.scratch import scratch_path
from worker.staging.source import StagedSource
from worker.staging.uri import resolve


class _Job:
    """One background pull and its outcome."""

    def __init__(self, settings: StagingSettings, uri: str, dest: Path) -> None:
        self.uri = uri
        self.dest = dest
        self.cancel = threading.Event()
        self.result: StagedSource | None = None
        self.error: LocationError | None = None
        self.thread = threading.Thread(
            target=self._run, args=(settings,), name="kamado-prefetch", daemon=True
        )

    def _run(self, settings: StagingSettings) -> None:
        try:
            self.result = pull(settings, self.uri, self.dest, cancel=self.cancel)
        except LocationError as e:
            self.error = e


class Prefetcher:
    """Pulls upcoming SFTP sources to scratch so the encoder is not idle between jobs.

    ``prefetch(uri)`` starts a pull in a thread; ``stage_in(uri)`` then yields it (waiting
    if it is still running) or, for a URI never prefetched or whose prefetch failed, pulls
    it now. Unused prefetched files are removed by ``close()``.
    """

    def __init__(
        self, settings: StagingSettings, scratch_dir: Path | None = None, *, max_ahead: int = 1
    ) -> None:
        self.settings = settings
        self.scratch = scratch_dir or settings.scratch_dir
        self.max_ahead = max_ahead
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def prefetch(self, uri: str) -> bool:
        """Start pulling ``uri`` now; False if it needs no pull, is running, or too many are."""
        if not self.settings.prefetch or self.settings.mode == "stream":
            return False
        try:
            if resolve(self.settings, uri).kind == "local":
                return False
        except LocationError:
            return False  # the job itself will report its bad URI
        with self._lock:
            if uri in self._jobs or len(self._jobs) >= self.max_ahead:
                return False
            job = _Job(self.settings, uri, scratch_path(self.scratch, uri))
            self._jobs[uri] = job
        job.thread.start()
        return True

    def pending(self) -> list[str]:
        """URIs being prefetched or waiting to be taken."""
        with self._lock:
            return list(self._jobs)

    @contextmanager
    def stage_in(
        self, uri: str, *, stream: bool | None = None, on_progress: ProgressCallback | None = None
    ) -> Iterator[StagedSource]:
        """Like :func:`worker.staging.api.stage_in`, using a prefetched copy when there is one."""
        with self._lock:
            job = self._jobs.pop(uri, None)
        if job is not None:
            job.thread.join()
            if job.result is not None:
                try:
                    yield job.result
                finally:
                    discard(job.dest)
                return
        with stage_in(
            self.settings, uri, self.scratch, stream=stream, on_progress=on_progress
        ) as source:
            yield source

    def cancel(self, uri: str) -> None:
        """Stop a prefetch and remove its file."""
        with self._lock:
            job = self._jobs.pop(uri, None)
        if job is not None:
            job.cancel.set()
            job.thread.join(60)
            discard(job.dest)

    def close(self) -> None:
        """Stop every prefetch and remove files nobody took."""
        for uri in self.pending():
            self.cancel(uri)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
