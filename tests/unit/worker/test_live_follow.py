"""The live feed gives ffmpeg exactly the finished recording, however it grew.

The recording grows in random chunks with random pauses on a real local file, the
finish hook's phase flips at a random moment after the last write, and a real FIFO is
read on the other side: the bytes read must be the file's bytes, no more, no fewer.
The lag behind the recording is a property of the sizes seen, checked on its own.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.broker.live import Phase
from worker.live.follow import Follower, LiveStopped, Position
from worker.settings.live import LiveSettings
from worker.settings.staging import StagingSettings
from worker.staging.uri import Target

LIVE = LiveSettings(poll=0.01, head_bytes=64 * 1024, head_wait=0.05)
STAGING = StagingSettings(min_free_mb=0)


def drain(fifo: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with fifo.open("rb") as fh:
            while chunk := fh.read(65536):
                into.append(chunk)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


chunks = st.lists(st.tuples(st.integers(1, 200_000), st.floats(0, 0.02)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None)
@given(growth=chunks, linger=st.floats(0, 0.05))
def test_the_feed_is_the_finished_file_byte_for_byte(
    growth: list[tuple[int, float]], linger: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rec, fifo = Path(tmp) / "rec.ts", Path(tmp) / "feed.fifo"
        rec.touch()
        os.mkfifo(fifo)
        phase = [Phase.RECORDING]
        follower = Follower(
            STAGING, LIVE, Target(str(rec), "local", str(rec)), fifo, phase=lambda: phase[0]
        ).start()
        got: list[bytes] = []
        reader = drain(fifo, got)
        with rec.open("ab") as out:
            for size, pause in growth:
                out.write(os.urandom(size))
                out.flush()
                time.sleep(pause)
        time.sleep(linger)
        phase[0] = Phase.FINISHED
        size = follower.finish(30)
        reader.join(10)
        data = rec.read_bytes()
        assert size == len(data)
        assert hashlib.sha256(b"".join(got)).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("ended", [Phase.REJECTED, Phase.ORDINARY, Phase.ABANDONED])
def test_the_feed_stops_when_the_live_path_is_ended(tmp_path: Path, ended: Phase) -> None:
    rec, fifo = tmp_path / "rec.ts", tmp_path / "feed.fifo"
    rec.write_bytes(os.urandom(1000))
    os.mkfifo(fifo)
    phase = [Phase.RECORDING]
    follower = Follower(
        STAGING, LIVE, Target(str(rec), "local", str(rec)), fifo, phase=lambda: phase[0]
    ).start()
    got: list[bytes] = []
    reader = drain(fifo, got)
    time.sleep(0.1)
    phase[0] = ended
    with pytest.raises(LiveStopped, match="live path was ended"):
        follower.finish(10)
    reader.join(10)
    assert b"".join(got) == rec.read_bytes()  # what it fed was the recording's own bytes


@given(
    sizes=st.lists(st.integers(0, 10_000), min_size=1, max_size=30),
    fed=st.integers(0, 300_000),
)
def test_the_lag_is_the_age_of_the_size_ffmpeg_has_reached(sizes: list[int], fed: int) -> None:
    position = Position(fed=0)
    total, when = 0, 1000.0
    for grow in sizes:
        total += grow
        position.grew(total, when)
        when += 1.0
    position.fed = min(fed, position.size)
    lag = position.lag_s(when)
    assert lag is not None and lag >= 0
    if position.fed >= position.size:
        assert lag == 0
    else:
        # the recording first held more than was fed at (when - lag): never earlier than
        # its first look, and not after the look that saw its current size
        first_more = min(t for t, s in position.seen if s > position.fed)
        assert lag == pytest.approx(when - first_more)
