"""The hook's quick path: what it loads, when it validates the config, and its delivery."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.scheduler.conftest import ROOT, Kamado, write_config
from tests.integration.scheduler.test_hooks import epgstation_env, place
from tests.support.redis_proc import RedisProcess
from worker.broker.registry import Registry

pytestmark = pytest.mark.integration

HEAVY = ("typer", "rich", "celery", "kombu", "redis", "pydantic_settings", "worker.settings.model",
         "pydantic.main")  # fmt: skip


def imported(kamado: Kamado, env: dict[str, str]) -> set[str]:
    """The modules one hook run imports (from the interpreter's own -X importtime list)."""
    argv = [sys.executable, "-X", "importtime", "-m", "worker.cli.main", "hook", "epgstation",
            "--config", str(kamado.config)]  # fmt: skip
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", done.stderr, re.MULTILINE)
    assert names, done.stderr
    return set(names)


def test_a_hook_with_a_known_config_loads_pydantics_validator_but_no_cli_broker_or_models(
    kamado: Kamado, tiny_ts: Path, tmp_path: Path
) -> None:
    first = imported(kamado, epgstation_env(str(place(tiny_ts, tmp_path, "1.ts"))))
    # The first hook on this config validates all of it with the real settings models.
    assert "worker.settings.model" in first
    again = imported(kamado, epgstation_env(str(place(tiny_ts, tmp_path, "2.ts"))))
    assert "pydantic_core" in again and "scheduler.recorder_input" in again
    assert sorted(m for m in again if m in HEAVY or m.split(".")[0] in HEAVY) == []
    kamado.delivered()
    assert len(kamado.json("status")) == 2


def test_a_config_or_variable_changed_into_an_error_is_refused_by_the_next_hook(
    kamado: Kamado, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path, "a.ts")
    assert kamado.run("hook", "epgstation", env=epgstation_env(str(rec))).returncode == 0
    kamado.delivered()
    bad_env = kamado.run("hook", "epgstation", env={**epgstation_env(str(rec)),
                                                    "KAMADO_JOBS__MAX_ATTEMPTS": "0"})  # fmt: skip
    assert bad_env.returncode == 2
    assert "jobs.max_attempts = '0'" in bad_env.stderr
    original = kamado.config.read_text(encoding="utf-8")
    kamado.config.write_text(original + "[encode]\nspeed = 3\n", encoding="utf-8")
    bad_file = kamado.run("hook", "epgstation", env=epgstation_env(str(rec)))
    assert bad_file.returncode == 2
    assert "encode.speed: unknown key" in bad_file.stderr
    kamado.config.write_text(original, encoding="utf-8")
    assert kamado.json("spool", "list") == []  # neither refused run spooled anything
    assert kamado.run("hook", "epgstation", env=epgstation_env(str(rec))).returncode == 0
    kamado.delivered()


def test_the_delivery_outlives_a_recorder_that_kills_the_hooks_process_group(
    kamado: Kamado, registry: Registry, tiny_ts: Path, tmp_path: Path
) -> None:
    rec = place(tiny_ts, tmp_path, "kill.ts")
    argv = [sys.executable, "-m", "worker.cli.main", "hook", "epgstation",
            "--config", str(kamado.config)]  # fmt: skip
    hook = subprocess.Popen(argv, env=epgstation_env(str(rec)), cwd=ROOT,
                            stdout=subprocess.PIPE, start_new_session=True)  # fmt: skip
    out, _ = hook.communicate(timeout=60)
    assert hook.returncode == 0 and out.startswith(b"spooled")
    # What a recorder's timeout does: kill everything in the hook's process group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(hook.pid, signal.SIGKILL)
    kamado.delivered()
    (job,) = registry.list()
    assert job.job.source == str(rec)


def test_a_recording_gone_before_delivery_is_set_aside_with_its_reason(
    own_redis: RedisProcess, tiny_ts: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    # The hook's delivery gives up on the absent broker after a second, not the default minute.
    config = write_config(tmp_path / "k.toml", own_redis.url, state, "delivery_retry = 1\n")
    kamado = Kamado(config, state, own_redis.url)
    rec = place(tiny_ts, tmp_path, "消えた 'x'.ts")
    own_redis.kill()
    assert kamado.run("hook", "epgstation", env=epgstation_env(str(rec))).returncode == 0
    kamado.settle()
    (waiting,) = kamado.json("spool", "list")
    assert (waiting["kind"], waiting["recorder_path"]) == ("hook", str(rec))
    rec.unlink()
    own_redis.start()
    flushed = kamado.json("spool", "flush")
    assert (flushed["delivered"], flushed["quarantined"]) == ([], 1)
    (reason,) = (state / "spool" / "bad").glob("*.reason")
    assert f"{rec}: no such file" in reason.read_text(encoding="utf-8")
    log = (state / "logs" / "hooks.log").read_text(encoding="utf-8")
    assert "epgstation: set aside" in log and "no such file" in log
    assert Registry.connect(own_redis.url).list() == []


def test_without_a_broker_the_hook_spools_and_says_how_to_deliver(
    tiny_ts: Path, tmp_path: Path
) -> None:
    config = tmp_path / "k.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    rec = place(tiny_ts, tmp_path, "b.ts")
    argv = [sys.executable, "-m", "worker.cli.main", "hook", "epgstation", "--json",
            "--config", str(config)]  # fmt: skip
    done = subprocess.run(argv, env=epgstation_env(str(rec)), cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "no broker configured" in done.stderr and "kamado spool flush" in done.stderr
    spooled = list((tmp_path / "state" / "spool").glob("*.json"))
    assert len(spooled) == 1
    assert json.loads(spooled[0].read_text(encoding="utf-8"))["path"] == str(rec)


@pytest.mark.parametrize("wait", [False, True], ids=["quick", "wait"])
@pytest.mark.parametrize("recorder,variable", [("epgstation", b"RECPATH"), ("edcb", b"FilePath")])
def test_a_cp932_recording_name_in_the_environment_is_refused_as_not_utf8_not_as_unset(
    kamado: Kamado, tiny_ts: Path, tmp_path: Path, recorder: str, variable: bytes, wait: bool
) -> None:
    # The raw bytes a recorder set up for Shift_JIS passes: 番組「ニュース」.ts in CP932.
    name = "番組「ニュース」.ts".encode("cp932")
    path = os.fsencode(tmp_path) + b"/" + name
    Path(os.fsdecode(path)).write_bytes(tiny_ts.read_bytes())
    env = {b"PATH": os.fsencode(os.environ.get("PATH", "/usr/bin:/bin")), variable: path}
    argv = [sys.executable, "-m", "worker.cli.main", "hook", recorder, *(["--wait"] * wait),
            "--config", str(kamado.config)]  # fmt: skip
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert "not valid UTF-8" in err and "convmv -f cp932 -t utf8" in err, err
    assert "is not set" not in err
    assert repr(name)[2:-1] in err  # the name shown as its bytes
    assert not list((kamado.state_dir / "spool").glob("*.json"))
