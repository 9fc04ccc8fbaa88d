"""EPGStation's start hook: parsed alike on both routes, a missing file accepted, one job id."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from scheduler.cli import hook as hook_cli
from scheduler.cli.job_table import detail
from scheduler.delivery.hook_jobs import LIVE_OFF, Skipped, submission_for
from scheduler.errors import RecordingError
from scheduler.hooks.quick import HookArgs, accept, parse_args
from scheduler.recorder_input import HookRequest, hook_request
from scheduler.recorders import HookInput, epgstation_input, hook_input
from scheduler.spool.durable import Spool
from scheduler.submission import Submission, prepare
from worker.jobs import Recording
from worker.settings.model import Settings

FLAGS = ["--start", "--failed", "--json", "--config=/k.toml"]
NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
NAMES = st.text(NAME_CHARS, min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))
START = datetime(2026, 12, 8, 21, 0, tzinfo=UTC)
END = datetime(2026, 12, 8, 21, 30, tzinfo=UTC)


def typer_args(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, HookArgs | None]:
    """What the full command line hands the quick path for ``argv`` (and its exit code)."""
    seen: list[HookArgs] = []

    def capture(args: HookArgs, env: dict[str, str] | None = None) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(hook_cli, "accept", capture)
    root = typer.Typer()
    root.add_typer(hook_cli.app, name="hook")
    result = CliRunner().invoke(root, argv)
    return result.exit_code, (seen[0] if seen else None)


@given(flags=st.lists(st.sampled_from(FLAGS), unique=True).flatmap(st.permutations))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_quick_parser_and_typer_read_the_start_flag_alike(
    flags: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["hook", "epgstation", *flags]
    quick = parse_args(argv)
    code, full = typer_args(argv, monkeypatch)
    if "--start" in flags and "--failed" in flags:
        assert quick is None  # the full command line refuses it
        assert (code, full) == (2, None)
        return
    assert quick is not None
    assert quick.start == ("--start" in flags)
    assert (code, full) == (0, quick)


def test_start_with_failed_is_refused_with_one_line_naming_both() -> None:
    root = typer.Typer()
    root.add_typer(hook_cli.app, name="hook")
    result = CliRunner().invoke(root, ["hook", "epgstation", "--start", "--failed", "--wait"])
    assert result.exit_code == 2
    assert "--start (recordingStartCommand) and --failed" in result.output


def test_only_epgstation_has_a_start_hook() -> None:
    assert parse_args(["hook", "edcb", "--start"]) is None  # typer: no such option
    assert parse_args(["hook", "chinachu", "a.ts", "{}", "--start"]) is None


def epgstation_env(recpath: str) -> dict[str, str]:
    return {"RECPATH": recpath, "NAME": "ニュース", "STARTAT": str(int(START.timestamp() * 1000)),
            "ENDAT": str(int(END.timestamp() * 1000)), "DROP_CNT": "null"}  # fmt: skip


def test_a_start_hook_spools_a_recording_that_is_not_there_yet(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(
        f'broker_url = "redis://127.0.0.1:1/0"\nstate_dir = "{tmp_path}/state"\n',
        encoding="utf-8",
    )
    spool = Spool(tmp_path / "state" / "spool")
    missing = tmp_path / "recorded" / "番組 #1.m2ts"
    args = HookArgs("epgstation", config=config, start=True)
    with spool.service_lock():  # the service delivers it: no delivery process is started
        assert accept(args, env=epgstation_env(str(missing))) == 0
        finish = accept(HookArgs("epgstation", config=config), env=epgstation_env(str(missing)))
    assert finish == 2  # the finish hook still wants the file
    (entry,) = spool.entries()
    assert entry.request is not None and entry.request.start
    assert entry.request.path == str(missing)
    log = (tmp_path / "state" / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert f"epgstation: spooled the start of {str(missing)!r}" in log
    assert "no such file" in log


def test_a_start_hook_refuses_a_directory_where_the_recording_goes(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text(f'state_dir = "{tmp_path}/state"\n', encoding="utf-8")
    (tmp_path / "a.ts").mkdir()
    args = HookArgs("epgstation", config=config, start=True)
    assert accept(args, env=epgstation_env(str(tmp_path / "a.ts"))) == 2
    assert Spool(tmp_path / "state" / "spool").entries() == []


def test_spool_entries_written_before_the_start_flag_still_read_as_finish_hooks() -> None:
    request = hook_request("epgstation", env={"RECPATH": "/r/a.ts"}, args=[], path="/r/a.ts")
    old = json.loads(request.to_json())
    del old["start"]
    again = HookRequest.from_json(json.dumps(old))
    assert not again.start and not hook_input(again).live
    started = hook_request(
        "epgstation", env={"RECPATH": "/r/a.ts"}, args=[], path="/r/a.ts", start=True
    )
    assert hook_input(HookRequest.from_json(started.to_json())).live


@given(name=NAMES, profile=st.sampled_from(["h264-auto", "h264-x264"]))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_start_hook_and_the_finish_hook_name_the_same_job(
    tmp_path: Path, name: str, profile: str
) -> None:
    root = tmp_path / hashlib.sha256(f"{name}/{profile}".encode()).hexdigest()[:12]
    real = root / "disk" / "recorded"
    real.mkdir(parents=True, exist_ok=True)
    (root / "recorded").symlink_to(real, target_is_directory=True)  # EPGStation's spelling
    recpath = str(root / "recorded" / f"{name}.ts")
    settings_ = Settings(state_dir=tmp_path / "state", encode={"default_profile": profile})
    recording = epgstation_input(epgstation_env(recpath), failed=False, live=True).recording
    started = submission_for(settings_, "epgstation", HookInput(recpath, recording, live=True),
                             None)  # fmt: skip
    assert isinstance(started, Submission)
    (real / f"{name}.ts").write_bytes(b"G" * 188 * 4)
    finished = prepare(settings_, recpath, origin="epgstation", recording=recording)
    assert finished is not None
    assert started.job.id == finished.job.id
    assert started.job.live and not finished.job.live
    assert started.estimate_s == 1800.0  # from the recorder's times: no size to go by


def test_with_live_jobs_off_a_start_hook_submits_nothing(tmp_path: Path) -> None:
    off = Settings(state_dir=tmp_path, live={"enabled": False})
    data = HookInput("/nowhere/a.ts", Recording(recorder="epgstation"), live=True)
    assert submission_for(off, "epgstation", data, None) == Skipped(LIVE_OFF)


def test_a_finish_hook_config_skips_still_names_its_job(tmp_path: Path) -> None:
    rec = tmp_path / "a.ts"
    rec.write_bytes(b"G" * 188 * 4)
    skip = Settings(state_dir=tmp_path, scheduler={"hold": {"failed_recordings": "skip"}})
    data = HookInput(str(rec), Recording(recorder="epgstation"), failed=True)
    skipped = submission_for(skip, "epgstation", data, None)
    started = prepare(skip, str(rec), origin="epgstation", recording=data.recording, live=True)
    assert isinstance(skipped, Skipped) and started is not None
    assert skipped.job_id == started.job.id


def test_prepare_live_still_refuses_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not valid UTF-8"):
        prepare(Settings(state_dir=tmp_path), "/rec/\udc82\udca0.ts", origin="epgstation",
                live=True)  # fmt: skip


def row(state: str, **live: object) -> dict[str, object]:
    return {"state": state, "live": {"phase": "recording", "worker": "celery@fast", **live}}


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (row("encoding", lag_s=3.24), "live, 3.2 s behind"),
        (
            row("encoding", lag_s=1.0, read_bytes=2e9, file_bytes=2.1e9),
            "live, 1.0 s behind (2.0 GB of 2.1 GB read)",
        ),
        (row("queued"), "live: sent to celery@fast, not started yet"),
        (
            row("verifying", phase="finished", lag_s=0.5),
            "live: recording ended, reading to its end, 0.5 s behind",
        ),
        (
            row("held", phase="waiting", reason="no worker measured at ≥ 1.3× real time for p"),
            "live: waiting for the finish hook (no worker measured at ≥ 1.3× real time for p)",
        ),
        (
            row("encoding", phase="rejected", reason="12 drops (threshold 10)", after="hold"),
            "live: stopping (12 drops (threshold 10)), then held",
        ),
        (
            row("held", phase="abandoned", reason="the feed stalled"),
            "live attempt gave up (the feed stalled); waiting for the finish hook",
        ),
        (
            {**row("queued", phase="ordinary"), "waiting": "queue position 1 in encode.cpu"},
            "waiting: queue position 1 in encode.cpu",
        ),
    ],
)
def test_status_says_what_a_live_job_does(item: dict[str, object], words: str) -> None:
    assert detail(item) == words
