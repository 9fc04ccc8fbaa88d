"""Reading a whole remote file through dropped links, resuming at the last byte delivered."""

from __future__ import annotations

import threading
from collections.abc import Callable

from worker.settings.staging import StagingSettings
from worker.staging.connection import connect, with_retries
from worker.staging.errors import TransferError
from worker.staging.files import Files, RemoteStat, Sink, SinkError, TransferProgress
from worker.staging.uri import Target


def read_resumable(
    settings: StagingSettings,
    target: Target,
    sink: Sink,
    progress: TransferProgress,
    *,
    files: Files | None = None,
    first: RemoteStat | None = None,
    on_changed: Callable[[RemoteStat], None] | None = None,
    cancel: threading.Event | None = None,
) -> RemoteStat:
    """Read a whole source into ``sink`` from ``progress.done``, reconnecting after drops.

    ``files`` (an open connection) is used for the first attempt and closed. If the source
    changed between attempts, ``on_changed`` resets the sink and the copy restarts at 0;
    without it the read fails.
    """
    held: list[Files] = [files] if files is not None else []
    seen = [first]

    def attempt(_n: int) -> RemoteStat:
        conn = held.pop() if held else connect(settings, target.location)
        try:
            return read_once(conn)
        except SinkError as e:
            raise e.error from None  # the caller's own failure: its handler converts it
        finally:
            conn.close()

    def read_once(conn: Files) -> RemoteStat:
        st = conn.stat(target.path)
        before = seen[0]
        if before is not None and (st.size, st.mtime) != (before.size, before.mtime):
            if on_changed is None:
                raise TransferError(
                    f"{target.describe()!r} changed while being streamed",
                    location=target.location,
                    path=target.path,
                )
            on_changed(st)
            progress.done = 0
        seen[0] = st
        progress.total = st.size
        conn.read_to(target.path, sink, progress, offset=progress.done, size=st.size, cancel=cancel)
        if cancel is not None and cancel.is_set():
            return st
        end = conn.stat(target.path)
        if (end.size, end.mtime) != (st.size, st.mtime):
            raise TransferError(
                f"{target.describe()!r} changed during the transfer (still being recorded?)",
                location=target.location,
                path=target.path,
            )
        return st

    return with_retries(settings, attempt)
