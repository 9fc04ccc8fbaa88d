"""Building a submission: path mapping, profile rules, hold thresholds, settings checks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from scheduler.errors import RecordingError
from scheduler.paths import map_source, shown, sniff_ts
from scheduler.rules import check_rules
from scheduler.submission import prepare
from worker.errors import BadInputError, ConfigError
from worker.jobs import Recording
from worker.settings.model import Settings
from worker.settings.scheduler import PathMap, ProfileRule, SchedulerSettings

TS = bytes([0x47]) + bytes(187) + bytes([0x47]) + bytes(187)


def settings(**scheduler: object) -> Settings:
    return Settings(state_dir=Path("/tmp/kamado-unit"), scheduler=SchedulerSettings(**scheduler))  # type: ignore[arg-type]


def recording(tmp_path: Path, name: str = "a.ts") -> Path:
    path = tmp_path / name
    path.write_bytes(TS * 100)
    return path


def test_paths_map_by_longest_prefix_to_a_mount_or_an_sftp_location() -> None:
    maps = [PathMap(recorder="/rec", target="/mnt/rec"),
            PathMap(recorder="/rec/anime", target="sftp://recorder/anime")]  # fmt: skip
    assert map_source("/rec/a b.ts", maps) == "/mnt/rec/a b.ts"
    assert map_source("/rec/anime/第1話.ts", maps) == "sftp://recorder/anime/第1話.ts"
    assert map_source("/recx/a.ts", maps) == "/recx/a.ts"


def test_path_map_targets_must_be_absolute_or_sftp_location_uris() -> None:
    with pytest.raises(ValidationError, match=r"absolute path or sftp"):
        PathMap(recorder="/rec", target="mnt/rec")
    with pytest.raises(ValidationError, match=r"'\.\.' is not allowed"):
        PathMap(recorder="/rec", target="sftp://r/../etc")


def test_the_first_matching_rule_picks_the_profile(tmp_path: Path) -> None:
    config = settings(rules=[
        ProfileRule(profile="h264-intel", channel="^ＮＨＫ"),
        ProfileRule(profile="h264-x264", path="*/anime/*"),
    ])  # fmt: skip
    nhk = prepare(config, str(recording(tmp_path)), origin="epgstation",
                  recording=Recording(channel="ＮＨＫ総合"))  # fmt: skip
    (tmp_path / "anime").mkdir()
    anime = prepare(config, str(recording(tmp_path / "anime")), origin="enqueue")
    other = prepare(config, str(recording(tmp_path, "b.ts")), origin="enqueue")
    assert nhk and anime and other
    assert (nhk.job.profile, anime.job.profile, other.job.profile) == (
        "h264-intel", "h264-x264", "h264-auto",
    )  # fmt: skip


def test_rules_need_a_condition_and_a_known_profile() -> None:
    with pytest.raises(ValidationError, match="has no condition"):
        ProfileRule(profile="h264-auto")
    with pytest.raises(ValidationError, match="not a regular expression"):
        ProfileRule(profile="h264-auto", title="(")
    with pytest.raises(ConfigError, match=r"scheduler\.rules\.0\.profile = 'fast'"):
        check_rules(settings(rules=[ProfileRule(profile="fast", channel="x")]))


def test_damage_above_thresholds_holds_or_flags(tmp_path: Path) -> None:
    damaged = Recording(drop_count=5, scrambling_count=0)
    held = prepare(settings(hold={"drops": 4}), str(recording(tmp_path)), origin="epgstation",
                   recording=damaged)  # fmt: skip
    flagged = prepare(settings(hold={"drops": 4, "action": "flag"}), str(recording(tmp_path)),
                      origin="epgstation", recording=damaged)  # fmt: skip
    fine = prepare(settings(hold={"drops": 5}), str(recording(tmp_path)), origin="epgstation",
                   recording=damaged)  # fmt: skip
    assert held and held.held and held.flags == ["5 drops (threshold 4)"]
    assert flagged and not flagged.held and flagged.flags
    assert fine and not fine.held and not fine.flags


def test_failed_recordings_follow_the_config(tmp_path: Path) -> None:
    path = str(recording(tmp_path))
    skipped = prepare(
        settings(hold={"failed_recordings": "skip"}), path, origin="edcb", failed=True
    )
    held = prepare(settings(hold={"failed_recordings": "hold"}), path, origin="edcb", failed=True)
    assert skipped is None
    assert held and held.held


def test_hooks_outrank_the_backlog_and_lengths_come_from_times_or_size(tmp_path: Path) -> None:
    path = str(recording(tmp_path))
    hook = prepare(settings(), path, origin="chinachu",
                   recording=Recording(start=None, end=None))  # fmt: skip
    backlog = prepare(settings(), path, origin="enqueue", size=17_000_000 * 60 // 8)
    assert hook and backlog
    assert hook.job.priority < backlog.job.priority
    assert backlog.estimate_s == 60.0
    assert hook.job.id == backlog.job.id  # same recording, same profile: one job


def test_unusable_recordings_are_named_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.ts").write_bytes(b"")
    with pytest.raises(RecordingError, match=r"empty\.ts: the file is empty"):
        prepare(settings(), str(tmp_path / "empty.ts"), origin="enqueue")
    with pytest.raises(RecordingError, match="no such file"):
        prepare(settings(), str(tmp_path / "gone.ts"), origin="enqueue")
    bad = str(tmp_path).encode() + b"/\x83e.ts"
    with pytest.raises(RecordingError, match="not valid UTF-8"):
        prepare(settings(), bad.decode("utf-8", "surrogateescape"), origin="enqueue")
    with pytest.raises(BadInputError, match="unknown profile"):
        prepare(settings(), str(recording(tmp_path)), origin="enqueue", profile="nope")


def test_names_with_newlines_or_bad_bytes_are_shown_escaped() -> None:
    assert shown("/r/番組\nb.ts") == "'/r/番組\\nb.ts'"
    assert shown(b"/r/\xff.ts".decode("utf-8", "surrogateescape")) == "'/r/\\xff.ts'"
    assert shown("/r/番組 'a'.ts") == "/r/番組 'a'.ts"


def test_ts_and_m2ts_are_recognised_by_their_sync_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.ts").write_bytes(TS)
    (tmp_path / "b.m2ts").write_bytes((bytes(4) + TS[:188]) * 2)
    (tmp_path / "c.ts").write_bytes(b"hello" * 100)
    assert sniff_ts(tmp_path / "a.ts") is None
    assert sniff_ts(tmp_path / "b.m2ts") is None
    assert sniff_ts(tmp_path / "c.ts") == "not an MPEG-TS recording (no sync bytes)"


def test_the_example_scheduler_config_is_valid() -> None:
    import tomllib

    example = Path(__file__).parents[3] / "deploy" / "scheduler.example.toml"
    config = Settings(state_dir=Path("/tmp/k"), **tomllib.loads(example.read_text("utf-8")))
    check_rules(config)
    assert config.scheduler.path_map[1].target == "sftp://recorder/recorded"


def test_an_epgstation_hook_names_its_output_from_the_template_and_carries_its_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.recorders import epgstation_input

    rec = recording(tmp_path, "20261201210000-raw.ts")
    env = {"RECPATH": str(rec), "NAME": "ドラマ/第1話?", "CHANNELNAME": "ＮＨＫ総合",
           "STARTAT": "1796126400000", "ENDAT": "1796128200000",  # 2026-12-01 12:00Z
           "DROP_CNT": "0", "ERROR_CNT": "2", "SCRAMBLING_CNT": "null"}  # fmt: skip
    monkeypatch.setenv("TZ", "UTC")  # {start} is in the scheduler's local time
    time.tzset()
    conf = Settings(
        state_dir=tmp_path / "state",
        encode={"output_name": "{title} {start:%Y-%m-%d %H%M}", "output_dir": str(tmp_path)},
    )
    for failed in (False, True):
        data = epgstation_input(env, failed=failed)
        sub = prepare(conf, data.path, origin="epgstation", recording=data.recording,
                      failed=data.failed)  # fmt: skip
        assert sub is not None
        assert Path(sub.job.output).name == "ドラマ／第1話？ 2026-12-01 1200.mp4"
        assert sub.job.recording is not None
        counts = sub.job.recording
        assert (counts.drop_count, counts.error_count, counts.scrambling_count) == (0, 2, None)
        assert counts.failed is failed  # what delete_source reads on the worker
    monkeypatch.undo()
    time.tzset()
