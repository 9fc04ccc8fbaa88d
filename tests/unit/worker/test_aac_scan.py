"""Reading AAC layouts from ADTS frames: every channel configuration, every PCE shape,
any way the byte stream is cut into chunks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.encode.aac_scan import CONFIG_CHANNELS, AdtsScanner, frame_layout, scan_bytes


def _pad(bits: str) -> str:
    return bits + "0" * (-len(bits) % 8)


def adts(config: int, payload_bits: str, *, crc: bool = False) -> bytes:
    """One ADTS frame (AAC LC, 48 kHz) whose raw data block starts with ``payload_bits``."""
    payload_bits = _pad(payload_bits + "111")  # END
    payload = int(payload_bits, 2).to_bytes(len(payload_bits) // 8, "big") if payload_bits else b""
    length = (9 if crc else 7) + len(payload)
    header = (
        "111111111111" + "0" + "00" + ("0" if crc else "1")  # sync, MPEG-4, layer, CRC
        + "01" + "0011" + "0" + f"{config:03b}" + "0" + "0" + "0" + "0"
        + f"{length:013b}" + "11111111111" + "00"
    )  # fmt: skip
    head = int(header, 2).to_bytes(7, "big")
    return head + (b"\0\0" if crc else b"") + payload


def pce(front: list[bool], side: list[bool], back: list[bool], lfe: int) -> str:
    """A program config element: each list says, per element, whether it is a pair."""
    bits = "101" + "0000" + "01" + "0011"
    bits += f"{len(front):04b}{len(side):04b}{len(back):04b}{lfe:02b}" + "000" + "0000" + "000"
    for n, pair in enumerate(front + side + back):
        bits += ("1" if pair else "0") + f"{n % 16:04b}"
    bits += "".join(f"{n:04b}" for n in range(lfe))
    return bits


SCE = "000" + "0000" + "0" * 20  # an SCE's start: enough to name it
CPE = "001" + "0000" + "0" * 20


@given(config=st.integers(1, 7), crc=st.booleans())
def test_each_channel_configuration_gives_its_channel_count(config: int, crc: bool) -> None:
    layout = frame_layout(adts(config, CPE if config > 1 else SCE, crc=crc))
    assert layout is not None
    assert layout.channels == CONFIG_CHANNELS[config]
    assert not layout.dual_mono


@settings(max_examples=80, deadline=None)
@given(
    front=st.lists(st.booleans(), max_size=5),
    side=st.lists(st.booleans(), max_size=3),
    back=st.lists(st.booleans(), max_size=3),
    lfe=st.integers(0, 2),
)
def test_a_pce_counts_its_channels_and_only_two_front_singles_are_dual_mono(
    front: list[bool], side: list[bool], back: list[bool], lfe: int
) -> None:
    layout = frame_layout(adts(0, pce(front, side, back, lfe)))
    assert layout is not None
    assert layout.channels == sum(2 if p else 1 for p in front + side + back) + lfe
    assert layout.dual_mono == (front == [False, False] and not side and not back and not lfe)


def test_two_single_channel_elements_without_a_pce_are_dual_mono() -> None:
    for config in (0, 2):
        layout = frame_layout(adts(config, SCE))
        assert layout is not None and layout.dual_mono and layout.channels == 2
    assert frame_layout(adts(0, CPE)) is None  # configuration 0 needs a PCE or SCEs
    assert frame_layout(b"\x00" * 12) is None


@settings(max_examples=60, deadline=None)
@given(
    configs=st.lists(st.sampled_from([1, 2, 6, 7, 0]), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
    junk=st.binary(max_size=5).filter(lambda b: b"\xff" not in b),
)
def test_any_chunking_of_the_stream_finds_every_layout(
    configs: list[int], cuts: list[int], junk: bytes
) -> None:
    """0 stands for dual mono; junk before the first frame is skipped."""
    frames = [adts(c, pce([False, False], [], [], 0)) if c == 0 else adts(c, CPE) for c in configs]
    data = junk + b"".join(frames)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    found = scan_bytes(chunks)
    assert found.frames == len(frames)
    assert found.channels == {2 if c == 0 else CONFIG_CHANNELS[c] for c in configs}
    assert found.dual_mono == (0 in configs)
    assert found.max_channels == max(found.channels)


def test_a_frame_cut_off_at_the_end_is_not_counted() -> None:
    scanner = AdtsScanner()
    whole = adts(2, CPE)
    scanner.feed(whole + whole[:5])
    assert scanner.layouts.frames == 1
