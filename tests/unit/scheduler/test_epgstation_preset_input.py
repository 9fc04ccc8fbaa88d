"""The encode preset's promises, over generated names (property tests): its job's output
is exactly EPGStation's OUTPUT (mapped as the source is, and back), every output of a
recording is its own job, the source is only named, never touched."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.epgstation.api import upload_name
from scheduler.epgstation.preset import exact_output, preset_submission
from scheduler.errors import HookInputError
from scheduler.paths import map_source, unmap_target
from scheduler.recorders import epgstation_encode_input
from worker.settings.model import Settings
from worker.settings.scheduler import PathMap

NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")


def _fits(stem: str, suffix: str) -> bool:
    return len((stem + suffix).encode()) <= 255 and stem not in (".", "..")


STEMS = st.text(NAME_CHARS, min_size=1, max_size=120).filter(lambda s: _fits(s, "(99).m2ts"))
MAPS = st.sampled_from([[], [PathMap(recorder="/", target="sftp://recorder/")]])


def env_for(source: Path, output: Path, name: str) -> dict[str, str]:
    return {
        "INPUT": str(source), "OUTPUT": str(output), "RECORDEDID": "12", "NAME": name,
        "CHANNELNAME": "ＮＨＫ総合", "START_AT": "1764900000000", "END_AT": "1764901800000",
        "DROP_CNT": "0", "ERROR_CNT": "0", "SCRAMBLING_CNT": "0",
    }  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stem=STEMS, other=STEMS, maps=MAPS, dots=st.booleans())
def test_the_job_writes_exactly_output_and_each_output_is_its_own_job(
    stem: str, other: str, maps: list[PathMap], dots: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recorded = Path(tmp) / "recorded"
        recorded.mkdir()
        source = recorded / f"{stem}.m2ts"
        source.write_bytes(b"\x47" + bytes(187) + b"\x47" + bytes(187))
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        # EPGStation's OUTPUT may be spelled through ".." (a sub-directory beside it)
        spelled = recorded / "sub" / ".." if dots else recorded
        outputs = [spelled / f"{stem}.mp4", recorded / f"{other}(1).mp4"]
        settings_ = exact_output(Settings(scheduler={"path_map": maps}))
        subs = [
            preset_submission(settings_, epgstation_encode_input(env_for(source, out, stem)), None)
            for out in outputs
        ]
        for sub, out in zip(subs, outputs, strict=True):
            normal = str(Path(str(out).replace("/sub/..", "")))
            assert sub.job.output == map_source(normal, maps)
            assert unmap_target(sub.job.output, maps) == normal  # the path EPGStation waits on
            assert sub.job.source == map_source(str(source), maps)
            assert not sub.held and sub.force  # EPGStation asked: never held, re-run if ended
        assert subs[0].job.id != subs[1].job.id
        again = preset_submission(
            settings_, epgstation_encode_input(env_for(source, outputs[0], stem)), None
        )
        assert again.job.id == subs[0].job.id  # the same encode is the same job
        assert settings_.encode.on_conflict == "refuse"  # OUTPUT is never renamed
        assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
        assert sorted(p.name for p in recorded.iterdir()) == [source.name]


@given(rest=st.lists(st.text(NAME_CHARS, min_size=1, max_size=40), min_size=1, max_size=4))
def test_unmap_undoes_map_for_every_path_under_a_mapping(rest: list[str]) -> None:
    maps = [
        PathMap(recorder="/srv/rec", target="sftp://recorder/rec"),
        PathMap(recorder="/srv/rec/anime", target="/mnt/anime"),
    ]
    parts = [p for p in rest if p not in (".", "..")] or ["x"]
    path = "/srv/rec/" + "/".join(parts)
    assert unmap_target(map_source(path, maps), maps) == path


def test_an_unmapped_uri_has_no_recorder_path() -> None:
    assert unmap_target("sftp://elsewhere/x.mp4", []) is None
    assert unmap_target("/plain/x.mp4", []) == "/plain/x.mp4"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "INPUT is not set"),
        ({"INPUT": "/r/a.m2ts"}, "OUTPUT is not set"),
        ({"INPUT": "/r/a.m2ts", "OUTPUT": "null"}, "OUTPUT is not set"),
        ({"INPUT": "/r/a.m2ts", "OUTPUT": "/r/a.mp4", "DROP_CNT": "-1"}, "DROP_CNT"),
        ({"INPUT": "/r/a.m2ts", "OUTPUT": "/r/a.mp4", "END_AT": "soon"}, "END_AT"),
        ({"INPUT": "/r/a.m2ts", "OUTPUT": "/r/a.mp4", "CHANNELNAME": "x" * 5000}, "CHANNELNAME"),
    ],
)
def test_bad_preset_variables_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(HookInputError, match=message):
        epgstation_encode_input(env)


@given(name=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
                    min_size=1, max_size=120).map(lambda s: s + ".mp4"))  # fmt: skip
def test_the_upload_name_fits_epgstations_parser_and_its_taken_suffix(name: str) -> None:
    sent = upload_name(name)
    assert len(sent.encode()) <= 255 - len("(99)")  # room for EPGStation's "(n)"
    assert "\\" not in sent and "\r" not in sent and "\n" not in sent
    assert not (len(sent) > 1 and sent[1] == ":" and sent[0].isascii() and sent[0].isalpha())
    assert sent.endswith(".mp4")  # the extension survives a cut
    if len(name.encode()) <= 200 and not set(name) & set("\\\r\n:"):
        assert sent == name  # an ordinary name goes as it is
