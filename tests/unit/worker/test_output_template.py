"""encode.output_name: any template over any recorder metadata gives a name every file
system (and a Windows client of a Samba share) accepts; bad templates fail at load."""

from __future__ import annotations

import json
import os
import string
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.errors import BadInputError, ConfigError
from worker.jobs import Job, Recording, default_output
from worker.outputs.names import MAX_NAME_BYTES, is_temp_name
from worker.outputs.template import FIELDS, check_template, render_stem, safe_stem
from worker.settings.model import load_settings

WINDOWS_REFUSED = set('<>:"/\\|?*')
DEVICES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{n}" for d in ("COM", "LPT") for n in "0123456789¹²³"
}

# Any code point at all, surrogates and NUL included: what a recorder, or a crafted
# config, could hand the renderer before any other check.
ANY_TEXT = st.text(st.characters(), max_size=255).filter(
    lambda s: len(s.encode("utf-8", "surrogatepass")) <= 255
)
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
PIECES = st.sampled_from(
    ["{title}", "{channel}", "{stem}", "{start:%Y-%m-%d %H%M}", "{start}", "{start:%a %b}",
     "{title:>20}", " ", "-", ".", "..", "[録画]", "CON", ":", "?", "\\", "~"]
)  # fmt: skip
TEMPLATES = st.lists(PIECES, min_size=1, max_size=6).map("".join)


def is_safe(name: str) -> bool:
    """The rules of every file system kamado's outputs may land on, Samba included."""
    stem = name.removesuffix(".mp4")
    return (
        name.endswith(".mp4")
        and len(name.encode("utf-8")) <= MAX_NAME_BYTES
        and stem != ""
        and not WINDOWS_REFUSED & set(name)
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)
        and not stem.startswith((".", " "))
        and not stem.endswith((".", " "))
        and stem.split(".", 1)[0].rstrip(" ").upper() not in DEVICES
        and not is_temp_name(name)
    )


@settings(max_examples=300)
@given(
    template=TEMPLATES, title=ANY_TEXT | st.none(), channel=ANY_TEXT | st.none(),
    stem=ANY_TEXT, start=TIMES | st.none(),
)  # fmt: skip
def test_any_template_over_any_metadata_renders_a_safe_name(
    template: str, title: str | None, channel: str | None, stem: str, start: datetime | None
) -> None:
    check_template(template)
    # model_construct: the renderer must cope even with what validation would refuse.
    recording = Recording.model_construct(title=title, channel=channel, start=start)
    source = f"/rec/{stem.replace('/', '_')}.ts"
    name = default_output(source, Path("/out"), template, recording).removeprefix("/out/")
    assert is_safe(name), name


@settings(max_examples=100)
@given(text=ANY_TEXT)
def test_a_safe_name_is_one_linux_creates_and_lists_back(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    stem = render_stem("{title}", stem="fallback", title=text)
    directory = tmp_path_factory.mktemp("names")
    (directory / f"{stem}.mp4").write_bytes(b"")
    assert os.listdir(directory) == [f"{stem}.mp4"]


SAFE_TITLES = st.text(string.ascii_letters + string.digits + "あ番組・", min_size=1, max_size=60)


@given(title=SAFE_TITLES.filter(lambda t: t.upper() not in DEVICES), channel=SAFE_TITLES)
def test_text_that_is_already_safe_is_kept_as_it_is(title: str, channel: str) -> None:
    rendered = render_stem("{title} ({channel})", stem="x", title=title, channel=channel)
    assert rendered == f"{title} ({channel})"


def test_the_example_template_names_a_programme_by_title_and_local_start_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        stem = render_stem(
            "{title} {start:%Y-%m-%d %H%M} {channel}",
            stem="raw",
            title='ニュース/特集: "今日"',
            channel="ＮＨＫ総合",
            start=start,
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert stem == "ニュース／特集： ＂今日＂ 2026-12-01 2100 ＮＨＫ総合"


def test_a_missing_field_falls_back_to_the_recordings_stem_and_dots_never_lead() -> None:
    assert render_stem("{title} {start:%Y}", stem="番組", title="t") == "番組"
    assert render_stem("{title}", stem="x", title="..") == "x"
    assert render_stem("{title}", stem="...", title="") == "recording"
    assert render_stem("{title}", stem="x", title="con") == "con_"
    assert safe_stem("a\x00b\nc\u202ed") == "ab cd"


@given(
    name=st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
        lambda n: n not in FIELDS
    )
)
def test_a_template_naming_an_unknown_field_is_a_config_error_naming_the_key(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    config = tmp_path_factory.mktemp("cfg") / "kamado.toml"
    config.write_text(f'[encode]\noutput_name = "{{{name}}} {{stem}}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "encode.output_name" in str(raised.value)
    assert f"unknown field {{{name}}}" in str(raised.value)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{title:%Y}", "bad format spec"),
        ("{channel:d}", "bad format spec"),
        ("{start.year}", "unknown field"),
        ("{title!r}", "no conversions"),
        ("{title", "expected '}'"),
        ("shows/{title}", "must not contain '/'"),
        ("{}", "unknown field"),
    ],
)
def test_a_bad_template_is_refused_when_the_config_loads(
    tmp_path: Path, template: str, reason: str
) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(f"[encode]\noutput_name = {json.dumps(template)}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "encode.output_name" in str(raised.value) and reason in str(raised.value)


@pytest.mark.parametrize(
    ("recording", "field"),
    [
        ({"title": "a\x00b"}, "recording.title"),
        ({"channel": "x" * 5000}, "recording.channel"),
        ({"start": "2026-12-01T21:00:00"}, "recording.start"),
        ({"drop_count": -1}, "recording.drop_count"),
        ({"error_count": "many"}, "recording.error_count"),
        ({"failed": "perhaps"}, "recording.failed"),
        ({"delete": True}, "recording.delete"),
    ],
)
def test_a_task_with_bad_recorder_metadata_is_refused_naming_the_field(
    recording: dict[str, object], field: str
) -> None:
    payload = Job.create("/rec/a.ts", "h264-x264").model_dump(mode="json")
    payload["recording"] = recording
    with pytest.raises(BadInputError) as raised:
        Job.from_payload(payload)
    assert str(raised.value).startswith(f"bad job payload: {field}:"), str(raised.value)
