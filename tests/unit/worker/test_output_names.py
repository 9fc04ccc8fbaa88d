"""Output and temporary names: always within 255 bytes, stable, distinct (property tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.jobs import Job, default_output
from worker.outputs.names import (
    MAX_NAME_BYTES,
    cut_utf8,
    fit_name,
    is_temp_name,
    numbered,
    temp_name,
)

# File-name characters: anything but "/" and NUL, surrogates excluded (not UTF-8).
NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
STEMS = st.text(NAME_CHARS, min_size=1, max_size=300).filter(lambda s: s not in (".", ".."))
JOB_IDS = st.text("0123456789abcdef", min_size=20, max_size=20)


def size(name: str) -> int:
    return len(name.encode("utf-8"))


@given(stem=STEMS, n=st.integers(min_value=1, max_value=10_000))
def test_every_numbered_name_fits_255_bytes_and_ends_in_mp4(stem: str, n: int) -> None:
    name = numbered(f"/out/{stem}.mp4", n).removeprefix("/out/")
    assert size(name) <= MAX_NAME_BYTES
    assert name.endswith(".mp4")
    assert "/" not in name
    if n > 1:
        assert name.endswith(f" ({n}).mp4")


@given(stem=STEMS)
def test_a_name_that_fits_is_kept_and_a_long_one_is_cut_on_a_character_boundary(stem: str) -> None:
    name = fit_name(stem)
    if size(stem + ".mp4") <= MAX_NAME_BYTES:
        assert name == stem + ".mp4"
    else:
        mark = "~" + hashlib.sha256(stem.encode()).hexdigest()[:6]
        assert name.endswith(mark + ".mp4")
        kept = name.removesuffix(mark + ".mp4")
        assert stem.startswith(kept)  # a prefix of whole characters, nothing garbled
        assert size(name) <= MAX_NAME_BYTES


@given(a=STEMS, b=STEMS)
def test_two_different_stems_never_share_a_name(a: str, b: str) -> None:
    if a != b:
        assert fit_name(a) != fit_name(b)


@given(stem=STEMS, n=st.integers(min_value=1, max_value=50), m=st.integers(1, 50))
def test_numbered_names_are_stable_and_distinct(stem: str, n: int, m: int) -> None:
    output = f"/out/{stem}.mp4"
    assert numbered(output, n) == numbered(output, n)
    assert (numbered(output, n) == numbered(output, m)) == (n == m)


@given(text=st.text(NAME_CHARS, max_size=200), limit=st.integers(0, 400))
def test_cut_utf8_returns_a_prefix_within_the_limit(text: str, limit: int) -> None:
    cut = cut_utf8(text, limit)
    assert text.startswith(cut)
    assert size(cut) <= limit
    if cut != text:  # the longest such prefix: one more character would not fit
        assert size(text[: len(cut) + 1]) > limit


@given(job_id=JOB_IDS, attempt=st.text("0123456789abcdef", min_size=8, max_size=12))
def test_temp_names_are_short_and_unique_per_job_and_attempt(job_id: str, attempt: str) -> None:
    name = temp_name(job_id, attempt)
    assert size(name) <= 64
    assert is_temp_name(name)
    assert job_id in name and attempt in name
    assert temp_name(job_id, attempt + "0") != name


def test_a_216_byte_epgstation_name_is_kept_whole_with_a_temp_that_fits() -> None:
    # EPGStation's default: date, channel and the full title; 216 bytes with ".mp4".
    stem = "2026年12月01日21時00分00秒-ＮＨＫ総合１・東京-" + "連続テレビ小説　朝の物語" * 3
    while size(stem + ".mp4") < 216:
        stem += "あ" if size(stem + "あ.mp4") <= 216 else "x"
    assert size(stem + ".mp4") == 216
    assert default_output(f"/rec/{stem}.ts", Path("/out")) == f"/out/{stem}.mp4"
    assert size(temp_name("0" * 20, "a" * 12)) <= 64


@settings(max_examples=200)
@given(stem=STEMS)
def test_a_default_output_always_has_a_name_a_file_system_accepts(stem: str) -> None:
    job = Job.create(f"/rec/{stem}.ts", "h264-x264", output_dir=Path("/out"))
    name = job.output.removeprefix("/out/")
    assert size(name) <= MAX_NAME_BYTES and name.endswith(".mp4") and "/" not in name
