"""A broadcast TS with real ARIB captions, muxed here from a public caption elementary stream.

The captions are johnoneil/arib's ``tests/detective_conan_846.es`` (tests/fixtures/arib,
see its README): the PES payloads of a Japanese broadcast's caption stream, one data
group after another. The video and audio come from a short ffmpeg-generated TS. This
module writes its own PAT and a PMT that lists the caption stream the way ISDB does
(stream type 0x06 with a stream identifier descriptor whose component tag is 0x30 and a
data component descriptor, tag 0xFD, id 0x0008), which is what ffmpeg's mpegts demuxer
needs to call the stream ``arib_caption`` (profile A), and puts each caption data group
in a private_stream_1 PES whose PTS lies inside the video's time span.
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "arib"
CAPTION_ES = FIXTURE / "detective_conan_846.es"
EXPECTED_TEXT = FIXTURE / "detective_conan_846.es.txt"

PACKET = 188
PAT_PID, PMT_PID = 0x0000, 0x01F0
VIDEO_PID, AUDIO_PID, CAPTION_PID = 0x0100, 0x0101, 0x0130
SERVICE_ID = 1024
CLOCK = 90_000
PLAIN_ENV = "KAMADO_TEST_PLAIN_AVCODEC_DIR"


def crc32_mpeg(data: bytes) -> int:
    """The MPEG-2 section CRC (polynomial 0x04C11DB7, not reflected, initial all ones)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def caption_units(data: bytes) -> list[bytes]:
    """Split a caption ES into its PES payloads: a data-group header (0x80 0xFF, then the
    header length), the data group (id, link numbers, 16-bit size, data) and its CRC-16."""
    units, at = [], 0
    while at + 8 <= len(data):
        if data[at] != 0x80 or data[at + 1] != 0xFF:
            raise ValueError(f"caption ES: no data-group header at byte {at}")
        start = at + 3 + (data[at + 2] & 0x0F)
        size = int.from_bytes(data[start + 3 : start + 5], "big")
        end = start + 5 + size + 2
        units.append(data[at:end])
        at = end
    return units


def statement_units(units: list[bytes]) -> list[int]:
    """Indexes of the caption statements (data group ids other than 0 and 0x20, which are
    caption management)."""
    found = []
    for i, unit in enumerate(units):
        start = 3 + (unit[2] & 0x0F)
        if (unit[start] >> 2) not in (0x00, 0x20):
            found.append(i)
    return found


def _section(table_id: int, extension: int, body: bytes) -> bytes:
    length = 5 + len(body) + 4
    head = bytes([table_id, 0xB0 | (length >> 8), length & 0xFF])
    head += extension.to_bytes(2, "big") + bytes([0xC1, 0x00, 0x00])
    section = head + body
    return section + crc32_mpeg(section).to_bytes(4, "big")


def pat() -> bytes:
    """A PAT with the one service."""
    return _section(0x00, 1, SERVICE_ID.to_bytes(2, "big") + (0xE000 | PMT_PID).to_bytes(2, "big"))


def _es(stream_type: int, pid: int, descriptors: bytes = b"") -> bytes:
    return (
        bytes([stream_type])
        + (0xE000 | pid).to_bytes(2, "big")
        + (0xF000 | len(descriptors)).to_bytes(2, "big")
        + descriptors
    )


def pmt() -> bytes:
    """A PMT: MPEG-2 video, AAC audio, and an ARIB caption stream (profile A)."""
    caption_descriptors = (
        bytes([0x52, 1, 0x30])  # stream identifier: component tag 0x30 (captions)
        + bytes([0xFD, 3, 0x00, 0x08, 0x3D])  # data component 0x0008, additional info
    )
    body = (0xE000 | VIDEO_PID).to_bytes(2, "big") + (0xF000).to_bytes(2, "big")
    body += (
        _es(0x02, VIDEO_PID) + _es(0x0F, AUDIO_PID) + _es(0x06, CAPTION_PID, caption_descriptors)
    )
    return _section(0x02, SERVICE_ID, body)


class Packetizer:
    """188-byte TS packets for one PID, with its continuity counter."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.counter = 0

    def packets(self, payload: bytes, *, section: bool = False) -> Iterator[bytes]:
        """Cut a PES (or, with a pointer field, a PSI section) into packets, the last one
        padded with adaptation-field stuffing (sections with 0xFF)."""
        data = (b"\x00" + payload) if section else payload
        first = True
        while data:
            head = bytes([0x47, (0x40 if first else 0) | (self.pid >> 8), self.pid & 0xFF])
            room = PACKET - 4
            chunk, data = data[:room], data[room:]
            if len(chunk) < room and not section:
                stuffing = room - len(chunk)
                field = bytes([stuffing - 1]) + (
                    (b"\x00" + b"\xff" * (stuffing - 2)) if stuffing > 1 else b""
                )
                packet = head + bytes([0x30 | self.counter]) + field + chunk
            else:
                packet = head + bytes([0x10 | self.counter]) + chunk.ljust(room, b"\xff")
            self.counter = (self.counter + 1) % 16
            first = False
            yield packet


def pts_bytes(pts: int) -> bytes:
    """The five-byte PTS field of a PES header ('0010' prefix, marker bits)."""
    pts &= (1 << 33) - 1
    return bytes(
        [
            0x21 | ((pts >> 29) & 0x0E),
            (pts >> 22) & 0xFF,
            0x01 | ((pts >> 14) & 0xFE),
            (pts >> 7) & 0xFF,
            0x01 | ((pts << 1) & 0xFE),
        ]
    )


def caption_pes(unit: bytes, pts: int) -> bytes:
    """A private_stream_1 PES carrying one caption data group at ``pts`` (synchronised PES)."""
    header = bytes([0x80, 0x80, 5]) + pts_bytes(pts)
    length = len(header) + len(unit)
    return b"\x00\x00\x01\xbd" + length.to_bytes(2, "big") + header + unit


def first_pts(ts: bytes, pid: int) -> int:
    """The PTS of the first PES that starts on ``pid``."""
    for at in range(0, len(ts) - PACKET + 1, PACKET):
        packet = ts[at : at + PACKET]
        if int.from_bytes(packet[1:3], "big") & 0x1FFF != pid or not packet[1] & 0x40:
            continue
        start = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
        pes = packet[start:]
        if pes[:3] == b"\x00\x00\x01" and pes[7] & 0x80:
            p = pes[9:14]
            return (
                ((p[0] >> 1) & 0x07) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1
            )
    raise ValueError(f"no PES with a PTS on PID {pid:#x}")


@dataclass(frozen=True)
class CaptionedTs:
    """A generated TS with real ARIB captions and the caption texts it carries."""

    path: Path
    statements: int  # caption statements muxed in (each with its own PTS)


def av_ts(path: Path, seconds: float) -> Path:
    """The video and audio: 320x180 MPEG-2 and AAC from ffmpeg, on known PIDs."""
    argv = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30000/1001",
        "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
        "-t", f"{seconds:g}", "-c:v", "mpeg2video", "-b:v", "1M",
        "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        "-f", "mpegts", "-mpegts_service_id", str(SERVICE_ID),
        "-mpegts_pmt_start_pid", str(0x1000), "-mpegts_start_pid", str(VIDEO_PID),
        str(path),
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=120)
    return path


def captioned_ts(path: Path, *, seconds: float = 2.0, units: int | list[int] = 6) -> CaptionedTs:
    """A TS of ``seconds`` whose caption stream holds the fixture's first ``units`` data
    groups (or those at the listed indexes), spread evenly over the first 80 % of the
    video (so each is shown before the end)."""
    base = av_ts(path.with_name(f".{path.name}.av.ts"), seconds)
    source = base.read_bytes()
    base.unlink()
    every_unit = caption_units(CAPTION_ES.read_bytes())
    picked = range(units) if isinstance(units, int) else units
    chosen = [every_unit[i] for i in picked]
    start = first_pts(source, VIDEO_PID)
    step = int(seconds * 0.8 * CLOCK / len(chosen))
    captions = Packetizer(CAPTION_PID)
    pending = [
        b"".join(captions.packets(caption_pes(unit, start + i * step)))
        for i, unit in enumerate(chosen)
    ]
    tables = [Packetizer(PAT_PID), Packetizer(PMT_PID)]
    av = [
        source[at : at + PACKET]
        for at in range(0, len(source), PACKET)
        if int.from_bytes(source[at + 1 : at + 3], "big") & 0x1FFF in (VIDEO_PID, AUDIO_PID)
    ]
    out = bytearray()
    every = max(1, len(av) // (len(pending) + 1))
    for n, packet in enumerate(av):
        if n % 40 == 0:
            out += b"".join(tables[0].packets(pat(), section=True))
            out += b"".join(tables[1].packets(pmt(), section=True))
        # Each caption goes in a little before the video it belongs to reaches the demuxer.
        if pending and n >= every * (len(chosen) - len(pending)):
            out += pending.pop(0)
        out += packet
    for rest in pending:
        out += rest
    path.write_bytes(bytes(out))
    return CaptionedTs(path=path, statements=len(statement_units(chosen)))


_TAG = re.compile(r"<([^<>]*)>")
_SIZES = {"Small Text": True, "Medium Text": False, "Normal Text": False}


def plain(text: str) -> str:
    """Caption text compared by its characters: NFKC (full-width forms folded), no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def expected_captions(limit: int) -> list[str]:
    """The first ``limit`` non-empty captions of the fixture, from its reference decode
    (johnoneil/arib's ``arib-es-extract``): the characters drawn at normal and medium size,
    one string per clear screen. Small text is ruby (furigana), which ffmpeg's decoder
    leaves out."""
    captions: list[str] = []
    current: list[str] = []
    small = False
    for line in EXPECTED_TEXT.read_text(encoding="utf-8").splitlines():
        at = 0
        for match in _TAG.finditer(line):
            if not small:
                current.append(line[at : match.start()])
            at = match.end()
            tag = match.group(1)
            if tag == "clear screen":
                if plain("".join(current)):
                    captions.append(plain("".join(current)))
                current = []
            elif tag in _SIZES:
                small = _SIZES[tag]
        if not small:
            current.append(line[at:])
        if len(captions) >= limit:
            break
    return captions[:limit]


def srt_texts(srt: str) -> list[str]:
    """The non-empty caption texts of an SRT document, tags removed, compared as ``plain``."""
    texts = []
    for block in srt.replace("\r\n", "\n").split("\n\n"):
        lines = block.strip().splitlines()
        if len(lines) >= 3 and "-->" in lines[1]:
            text = plain(_TAG.sub("", "".join(lines[2:])))
            if text:
                texts.append(text)
    return texts


def ass_texts(ass: str) -> list[str]:
    """The non-empty caption texts of an ASS document's Dialogue lines, override blocks
    (``{...}``) and line breaks removed, compared as ``plain``."""
    texts = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            text = line.split(",", 9)[-1].replace("\\N", "").replace("\\n", "")
            text = plain(re.sub(r"\{[^}]*\}", "", text))
            if text:
                texts.append(text)
    return texts


def plain_libavcodec() -> Path:
    """Debian's libavcodec without the ARIB decoder, unpacked by scripts/setup.sh dev."""
    root = Path(os.environ.get(PLAIN_ENV, "~/.cache/kamado/plain-libavcodec")).expanduser()
    found = sorted(root.glob("root/usr/lib/*/libavcodec.so.*"))
    if not found:
        pytest.skip(f"a plain libavcodec is not installed under {root} (scripts/setup.sh dev)")
    return found[0].parent
