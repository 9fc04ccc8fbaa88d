"""Audio shapes of Japanese broadcasts, made by real ffmpeg: bilingual, dual mono, 5.1,
and a layout that switches mid-recording.

ffmpeg's AAC encoder cannot write dual mono (two single channel elements in one stream),
so ``dual_mono_aac`` builds it from two mono encodes: each ADTS frame's SCE is cut out
(the encoder, with ``+bitexact``, writes SCE then END and zero padding), the second is
retagged, and both go behind a program config element naming two front SCEs.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30000/1001"]
FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
RATE = 48000


def tone(frequency: int, seconds: float) -> list[str]:
    """An ffmpeg input: a sine tone at 48 kHz."""
    return [
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:sample_rate={RATE}:duration={seconds:g}",
    ]


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, timeout=120)


def ts(
    path: Path,
    tones: list[tuple[int, int, str]],
    *,
    seconds: float = 2.0,
    offset: float = 0.0,
) -> Path:
    """A TS of MPEG-2 video and one AAC stream per (frequency, channels, language) tone,
    languages written into the PMT's ISO 639 descriptors ("" for none)."""
    argv = [*FFMPEG, *VIDEO]
    for frequency, _, _ in tones:
        argv += tone(frequency, seconds)
    argv += ["-t", f"{seconds:g}", "-map", "0:v"]
    for n, (_, channels, language) in enumerate(tones):
        argv += ["-map", f"{n + 1}:a", f"-ac:a:{n}", str(channels)]
        if language:
            argv += [f"-metadata:s:a:{n}", f"language={language}"]
    argv += ["-c:v", "mpeg2video", "-b:v", "1M", "-c:a", "aac", "-b:a", "128k",
             "-output_ts_offset", f"{offset:g}", "-f", "mpegts",
             "-mpegts_service_id", "1024", str(path)]  # fmt: skip
    run(argv)
    return path


def _frames(data: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos + 7 <= len(data):
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        frames.append(data[pos : pos + length])
        pos += length
    return frames


def _bits(data: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in data)


def _sce(frame: bytes, tag: int) -> str:
    """The single channel element of a mono frame, retagged."""
    payload = _bits(frame[7:]).rstrip("0")
    assert payload.startswith("000") and payload.endswith("111"), "not SCE ... END"
    return f"000{tag:04b}" + payload[7:-3]


# program_config_element: tag 0, AAC LC, 48 kHz, two front SCEs (tags 0 and 1), nothing else.
PCE = "10100000100110010000000000000000000000000000001"


def _pad(bits: str) -> str:
    return bits + "0" * (-len(bits) % 8)


def dual_mono_aac(path: Path, main_hz: int, sub_hz: int, seconds: float) -> Path:
    """An ADTS file of ISDB-style dual mono: ``main_hz`` on the main side, ``sub_hz`` on
    the sub side."""
    monos = []
    for n, frequency in enumerate((main_hz, sub_hz)):
        mono = path.with_name(f"{path.stem}.{n}.aac")
        run([*FFMPEG, *tone(frequency, seconds), "-ac", "1", "-c:a", "aac", "-b:a", "64k",
             "-flags", "+bitexact", str(mono)])  # fmt: skip
        monos.append(_frames(mono.read_bytes()))
        mono.unlink()
    out = bytearray()
    for main, sub in zip(*monos, strict=False):
        bits = _pad(PCE) + "00000000"  # PCE byte alignment, no comment bytes
        bits = _pad(bits + _sce(main, 0) + _sce(sub, 1) + "111")
        payload = int(bits, 2).to_bytes(len(bits) // 8, "big")
        length = 7 + len(payload)
        header = bytearray(main[:7])
        header[2] &= 0xFE  # channel configuration 0: the PCE says
        header[3] = (header[3] & 0x3C) | (length >> 11)
        header[4] = (length >> 3) & 0xFF
        header[5] = ((length & 0x07) << 5) | (header[5] & 0x1F)
        out += header + payload
    path.write_bytes(bytes(out))
    return path


def dual_mono_ts(
    path: Path, languages: str = "jpn,eng", seconds: float = 2.0, offset: float = 0.0
) -> Path:
    """A TS whose one audio stream is dual mono (440 Hz main, 1000 Hz sub), with the
    given ISO 639 descriptor ("" for none), its clock starting ``offset`` s later."""
    aac = dual_mono_aac(path.with_suffix(".aac"), 440, 1000, seconds)
    argv = [*FFMPEG, *VIDEO, "-i", str(aac), "-t", f"{seconds:g}", "-map", "0:v", "-map", "1:a",
            "-c:v", "mpeg2video", "-b:v", "1M", "-c:a", "copy"]  # fmt: skip
    if languages:
        argv += ["-metadata:s:a:0", f"language={languages}"]
    argv += ["-output_ts_offset", f"{offset:g}"]
    run([*argv, "-f", "mpegts", "-mpegts_service_id", "1024", str(path)])
    aac.unlink()
    return path


def back_to_back(path: Path, first: Path, second: Path) -> Path:
    """Two recordings joined into one, as at a programme boundary (the second made on
    the clock where the first ends); both parts are removed."""
    path.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()
    return path


def layout_switch_ts(path: Path, first: int, second: int, seconds: float = 2.0) -> Path:
    """The AAC stream changes from ``first`` to ``second`` channels on the same PID."""
    one = ts(path.with_name(f"{path.stem}.1.ts"), [(600, first, "jpn")], seconds=seconds)
    # A frame of silence on the clock between them: two encodes' priming never overlap.
    two = ts(
        path.with_name(f"{path.stem}.2.ts"), [(600, second, "jpn")], seconds=seconds,
        offset=seconds + 0.1,
    )  # fmt: skip
    return back_to_back(path, one, two)


def tone_frequency(path: Path, track: int) -> float:
    """The frequency of one audio track's first channel, from its zero crossings."""
    raw = subprocess.run(
        [*FFMPEG, "-i", str(path), "-map", f"0:a:{track}", "-ac", "1", "-f", "s16le",
         "-acodec", "pcm_s16le", "pipe:1"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    samples = [int.from_bytes(raw[i : i + 2], "little", signed=True) for i in range(0, len(raw), 2)]
    samples = samples[RATE // 10 : -RATE // 10]  # away from priming and the tail
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    return crossings * RATE / max(1, len(samples))
