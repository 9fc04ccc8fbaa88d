"""What an AAC stream really carries, read from its ADTS frames: channel layouts and dual mono.

ffprobe reports one layout per stream, from the first frames. A broadcast's AAC stream
changes layout at programme boundaries (2.0 for the news, 5.1 for the film, 2.0 again for
the adverts) and ISDB dual mono (two languages in one stream) decodes as plain "stereo".
Both are visible only in the bitstream: the ADTS header's channel configuration, and for
dual mono two single-channel elements (SCE) where stereo has one channel pair (CPE),
announced either by a program config element (PCE) or, in Japanese broadcasts, by
channel configuration 0 with no PCE at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from worker import process
from worker.errors import ProcessError, SourceError

# Channels of the ADTS channel configurations 1-7 (0: described by a PCE in the frame).
CONFIG_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8}
ID_SCE, ID_CPE, ID_PCE = 0, 1, 5
READ_SIZE = 1 << 16


class _Bits:
    """A big-endian bit reader over one frame's payload."""

    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = 8 * len(data)
        self.pos = 0

    def take(self, count: int) -> int:
        if self.pos + count > self.size:
            raise ValueError("frame ends inside an element")
        self.pos += count
        return (self.value >> (self.size - self.pos)) & ((1 << count) - 1)


@dataclass(frozen=True)
class FrameLayout:
    """The layout one ADTS frame declares."""

    channels: int
    dual_mono: bool


def _pce_layout(bits: _Bits) -> FrameLayout:
    bits.take(4 + 2 + 4)  # element tag, object type, sampling frequency index
    front, side, back = bits.take(4), bits.take(4), bits.take(4)
    lfe = bits.take(2)
    bits.take(3 + 4)  # associated data and coupling element counts
    for present in range(3):  # mono, stereo and matrix mixdown
        if bits.take(1):
            bits.take(4 if present < 2 else 3)
    pairs = [bits.take(1 + 4) >> 4 for _ in range(front + side + back)]
    channels = sum(2 if is_cpe else 1 for is_cpe in pairs) + lfe
    dual = front == 2 and side == back == lfe == 0 and not any(pairs)
    return FrameLayout(channels=channels, dual_mono=dual)


def frame_layout(frame: bytes) -> FrameLayout | None:
    """The layout of one ADTS frame (header included), or None if it cannot be read."""
    if len(frame) < 8 or frame[0] != 0xFF or frame[1] & 0xF0 != 0xF0:
        return None
    config = ((frame[2] & 0x01) << 2) | (frame[3] >> 6)
    header = 7 if frame[1] & 0x01 else 9  # protection_absent, else a CRC follows
    payload = frame[header:]
    if not payload:
        return None
    first = payload[0] >> 5
    if config == 0 and first == ID_PCE:
        bits = _Bits(payload)
        bits.take(3)
        try:
            return _pce_layout(bits)
        except ValueError:
            return None
    # Two single channel elements where stereo would have one pair: ISDB dual mono,
    # signalled by channel configuration 0 (no PCE) or 2.
    if config in (0, 2) and first == ID_SCE:
        return FrameLayout(channels=2, dual_mono=True)
    if config == 0:
        return None
    return FrameLayout(channels=CONFIG_CHANNELS[config], dual_mono=False)


@dataclass
class AacLayouts:
    """Every layout an AAC stream's frames declared, from start to end."""

    channels: set[int] = field(default_factory=set)
    dual_mono: bool = False
    frames: int = 0

    @property
    def max_channels(self) -> int | None:
        """The widest layout met (5.1 is 6), None when no frame was read."""
        return max(self.channels) if self.channels else None


class AdtsScanner:
    """Reads an ADTS byte stream chunk by chunk, recording each frame's layout.

    A frame's header repeats the previous one's in almost every frame, so only a frame
    whose fixed header or first element changed is parsed again."""

    def __init__(self) -> None:
        self.layouts = AacLayouts()
        self._buffer = b""
        self._last_key = b""
        self._last: FrameLayout | None = None

    def feed(self, chunk: bytes) -> None:
        """Add bytes; complete frames are read, a partial one waits for the next chunk."""
        data = self._buffer + chunk
        pos = 0
        while len(data) - pos >= 7:
            if data[pos] != 0xFF or data[pos + 1] & 0xF0 != 0xF0:
                pos += 1  # resynchronise after damage
                continue
            length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
            if length < 8:
                pos += 1
                continue
            if len(data) - pos < length:
                break
            self._record(data[pos : pos + length])
            pos += length
        self._buffer = data[pos:]

    def _record(self, frame: bytes) -> None:
        header = 7 if frame[1] & 0x01 else 9
        key = frame[1:4] + frame[header : header + 1]
        if key != self._last_key:
            self._last_key, self._last = key, frame_layout(frame)
        layout = self._last
        if layout is None:
            return
        self.layouts.frames += 1
        self.layouts.channels.add(layout.channels)
        self.layouts.dual_mono = self.layouts.dual_mono or layout.dual_mono


def scan_bytes(chunks: Iterable[bytes]) -> AacLayouts:
    """The layouts of an ADTS byte stream given in chunks."""
    scanner = AdtsScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.layouts


def scan_stream(ffmpeg: str, source: Path, index: int, *, timeout: float) -> AacLayouts:
    """Read one AAC stream of ``source`` to its end (copied, never decoded) and return the
    layouts it declared; a stream ffmpeg cannot read is a SourceError with its reason."""
    argv = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-fflags", "+discardcorrupt", "-analyzeduration", "10M", "-probesize", "32M",
        "-i", str(source), "-map", f"0:{index}", "-c", "copy", "-f", "data", "pipe:1",
    ]  # fmt: skip
    scanner = AdtsScanner()
    late = threading.Event()
    with process.Piped(argv) as child:
        child.stdin.close()

        def give_up() -> None:
            late.set()
            child.close(grace=0)

        # A read that stalls (a hung mount) ends when the timer kills the child.
        timer = threading.Timer(timeout, give_up)
        timer.start()
        try:
            while chunk := child.stdout.read(READ_SIZE):
                scanner.feed(chunk)
        except (OSError, ValueError) as e:
            if not late.is_set():
                raise SourceError(f"{source}: cannot read its audio: {e}", path=source) from e
        finally:
            timer.cancel()
        code = None if late.is_set() else child.wait(30.0)
        tail = child.stderr_tail
    if code is None:
        raise SourceError(
            f"{source}: reading audio stream #{index} took over {timeout:g} s", path=source
        )
    if code != 0:
        # ffmpeg's first line is the cause; the last is often a hint about the options.
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        reason = lines[0] if lines else f"ffmpeg exited with {code}"
        raise SourceError(f"{source}: cannot read audio stream #{index}: {reason}", path=source)
    return scanner.layouts


def scan_audio(
    ffmpeg: str, source: Path, indexes: list[int], *, timeout: float
) -> dict[int, AacLayouts]:
    """Each listed AAC stream's layouts, one pass of the source per stream."""
    try:
        return {i: scan_stream(ffmpeg, source, i, timeout=timeout) for i in indexes}
    except ProcessError as e:
        raise SourceError(f"{source}: cannot read its audio: {e}", path=source) from e
