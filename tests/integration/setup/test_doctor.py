"""`kamado doctor` on real configs, accounts and brokers: each finding names its fix."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import accounts, add_user, is_root, kamado
from tests.support.redis_proc import RedisProcess
from worker.broker.registry import Registry
from worker.celery_app import create_app
from worker.encode.sample import make_sample
from worker.jobs import Job
from worker.settings.model import Settings
from worker.submit import submit_job

pytestmark = pytest.mark.integration


def doctor(*args: str) -> tuple[int, list[dict[str, str]]]:
    result = kamado("doctor", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["findings"]


def failed(findings: list[dict[str, str]]) -> list[dict[str, str]]:
    return [f for f in findings if f["severity"] == "fail"]


@pytest.fixture
def box() -> Iterator[Path]:
    """A directory other users may enter (not under root's 0700 /tmp/pytest-of-root)."""
    path = Path(tempfile.mkdtemp(prefix="kamado-test-", dir="/run"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_doctor_names_example_values_and_missing_key_files_and_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(
        '[flower]\nbasic_auth = "admin:change-me"\n'
        f'[staging]\nscratch_dir = "{tmp_path / "scratch"}"\n'
        '[staging.locations.recorder]\nkind = "sftp"\nhost = "recorder.lan"\nuser = "kamado"\n'
        f'key_file = "{tmp_path / "missing_key"}"\nknown_hosts = "{tmp_path / "kh"}"\n'
        'root = "/srv/recorded"\n'
    )
    code, findings = doctor("--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null")
    assert code == 1
    subjects = {f["subject"]: f for f in failed(findings)}
    assert "placeholder" in subjects["flower.basic_auth"]["detail"]
    assert "recorder.lan" in subjects["staging.locations.recorder.host"]["detail"]
    key = subjects["staging.locations.recorder.key_file"]
    assert "kamado setup location recorder" in key["fix"]
    assert all(f["fix"] for f in failed(findings))


def test_doctor_passes_a_clean_config_and_exits_0(own_redis: RedisProcess, tmp_path: Path) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(f'broker_url = "{own_redis.url}"\nstate_dir = "{tmp_path / "state"}"\n')
    code, findings = doctor(
        "--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null",
        "--service-user", "root", "--hook-user", "root",
    )  # fmt: skip
    assert code == 0, failed(findings)
    assert [f["detail"] for f in findings if f["check"] == "broker"] == ["answers PING"]


def test_doctor_reports_a_broker_without_broker_url_when_units_need_one(tmp_path: Path) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text("")
    code, findings = doctor("--config", str(cfg), "--role", "guest", "--env-file", "/dev/null")
    # Guest and worker roles get the broker check; an embedded broker there is a mistake.
    assert code == 1
    assert any(f["check"] == "broker" and "redis://kamado:" in f["fix"] for f in failed(findings))


@pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)")
def test_doctor_checks_the_spool_and_config_as_the_hook_user_before_and_after_setup(
    box: Path,
) -> None:
    with accounts("kmd-svc", "kmd-rec") as (account, hook_user):
        add_user(hook_user)
        state = box / "var/lib/kamado"
        state.mkdir(parents=True, mode=0o700)  # what a hand-made set-up left
        cfg = box / "kamado.toml"
        cfg.write_text(f'state_dir = "{state}"\n')
        args = ("--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null",
                "--hook-user", hook_user, "--service-user", "root")  # fmt: skip
        code, findings = doctor(*args)
        assert code == 1
        bad = {f["subject"] for f in failed(findings)}
        assert f"{state / 'spool'} as {hook_user}" in bad
        assert f"{state / 'logs'} as {hook_user}" in bad
        result = kamado(
            "setup", "recorder", "--root", str(box), "--account", account,
            "--recorder-user", hook_user, "--recorder", "none",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        config = box / "etc/kamado/kamado.toml"
        config.write_text(config.read_text().replace('"/var/lib/kamado"', f'"{state}"'))
        args = ("--config", str(config), "--role", "recorder", "--env-file", "/dev/null",
                "--hook-user", hook_user, "--service-user", account)  # fmt: skip
        code, findings = doctor(*args)
        access = [f for f in findings if f["check"] == "access"]
        assert access and all(f["severity"] == "ok" for f in access), access
        # The hook line runs this venv's Python as the hook user: the doctor says whether it can.
        runs = next(f for f in findings if f["check"] == "hook command")
        probe = [
            "runuser",
            "-u",
            hook_user,
            "--",
            "test",
            "-x",
            str(Path(sys.executable).resolve()),
        ]
        can = subprocess.run(probe, timeout=30).returncode == 0
        assert runs["severity"] == ("ok" if can else "fail"), runs
        assert code == (0 if can else 1), failed(findings)


def test_doctor_reports_a_queue_with_work_and_no_consumer(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    settings = Settings(broker_url=own_redis.url, state_dir=tmp_path / "client")
    app = create_app(settings)
    registry = Registry.connect(own_redis.url)
    try:
        source = make_sample(tmp_path / "waiting.ts", seconds=1)
        submit_job(app, registry, settings, Job.create(str(source), "h264-x264"))
    finally:
        registry.close()
        with contextlib.suppress(Exception):
            app.close()
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(f'broker_url = "{own_redis.url}"\nstate_dir = "{tmp_path / "state"}"\n')
    code, findings = doctor("--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null",
                            "--service-user", "root", "--hook-user", "root")  # fmt: skip
    queues = {f["subject"]: f for f in findings if f["check"] == "queue"}
    assert queues["queue encode.cpu"]["severity"] == "fail"
    assert "1 job(s) wait in encode.cpu" in queues["queue encode.cpu"]["detail"]
    assert "kamado worker" in queues["queue encode.cpu"]["fix"]
    assert queues["queue encode.gpu"]["severity"] == "ok"
    assert code == 1


def test_doctor_on_the_host_reports_the_preflight_kamado_host_preflight_runs(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text('[host]\nlibvirt_uri = "test:///default"\n')
    code, findings = doctor("--config", str(cfg), "--role", "host", "--env-file", "/dev/null")
    preflight = kamado("host", "preflight", "--config", str(cfg), "--json")
    checks = json.loads(preflight.stdout)["checks"]
    ours = [(f["subject"], f["severity"]) for f in findings if f["check"] == "preflight"]
    theirs = [(c["name"], {"pass": "ok"}.get(c["status"], c["status"])) for c in checks]
    assert ours == theirs and ours
    preflight_failed = any(c["status"] == "fail" for c in checks)
    assert (preflight.returncode != 0) == preflight_failed
    assert code == (1 if failed(findings) else 0)
    assert not preflight_failed or code == 1


def test_doctor_warns_about_a_world_readable_config_without_failing(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(f'broker_url = "{own_redis.url}"\nstate_dir = "{tmp_path / "state"}"\n')
    args = ("--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null",
            "--service-user", "root", "--hook-user", "root")  # fmt: skip
    cfg.chmod(0o640)
    code, findings = doctor(*args)
    assert code == 0 and not [f for f in findings if f["check"] == "secrets"]
    cfg.chmod(0o644)
    code, findings = doctor(*args)
    secrets = [f for f in findings if f["check"] == "secrets"]
    assert code == 0 and [f["severity"] for f in secrets] == ["warn"]
    assert "chmod 0640" in secrets[0]["fix"]


@pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)")
def test_doctor_sees_a_local_location_the_units_drop_in_leaves_read_only(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    first, second = tmp_path / "nas", tmp_path / "usb"
    first.mkdir()
    second.mkdir()
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(
        f'broker_url = "{own_redis.url}"\n'
        f'[staging]\nscratch_dir = "{tmp_path / "scratch"}"\nmin_free_mb = 0\n'
        f'[staging.locations.nas]\nkind = "local"\npath = "{first}"\n'
    )
    with accounts("kmd-units") as (account,):
        units = ("setup", "units", "--role", "worker", "--config", str(cfg), "--root", str(root),
                 "--account", account)  # fmt: skip
        assert kamado(*units).returncode == 0
        args = ("--config", str(cfg), "--role", "worker", "--env-file", "/dev/null",
                "--root", str(root), "--service-user", "root")  # fmt: skip
        _, findings = doctor(*args)
        unit = next(f for f in findings if f["subject"] == "kamado-worker.service")
        assert unit["severity"] == "ok", unit
        with cfg.open("a") as fh:
            fh.write(f'[staging.locations.usb]\nkind = "local"\npath = "{second}"\n')
        code, findings = doctor(*args)
        unit = next(f for f in findings if f["subject"] == "kamado-worker.service")
        assert code == 1 and unit["severity"] == "fail"
        assert str(second) in unit["detail"] and str(first) not in unit["detail"]
        assert unit["fix"] == "sudo kamado setup units --role worker"
        assert kamado(*units).returncode == 0
        code, findings = doctor(*args)
        assert code == 0, failed(findings)


def test_doctor_names_a_service_user_that_does_not_exist_with_the_setup_that_makes_it(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text("")
    code, findings = doctor(
        "--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null",
        "--service-user", "kmd-nobody-here",
    )  # fmt: skip
    account = [f for f in findings if f["check"] == "account"]
    assert code == 1 and len(account) == 1
    assert "does not exist" in account[0]["detail"]
    assert "kamado setup" in account[0]["fix"]
    assert not [f for f in findings if f["subject"] == f"{cfg} as kmd-nobody-here"]


@pytest.mark.skipif(not is_root(), reason="creates real accounts (run as root)")
def test_doctor_fails_a_recorder_unit_that_resets_the_shared_spools_mode(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(f'broker_url = "{own_redis.url}"\nstate_dir = "{tmp_path / "state"}"\n')
    with accounts("kmd-units") as (account,):
        units = ("setup", "units", "--role", "recorder", "--config", str(cfg), "--root",
                 str(root), "--account", account)  # fmt: skip
        assert kamado(*units).returncode == 0
        args = ("--config", str(cfg), "--role", "recorder", "--env-file", "/dev/null",
                "--root", str(root), "--service-user", "root", "--hook-user", "root")  # fmt: skip
        code, findings = doctor(*args)
        assert code == 0, failed(findings)
        # An admin's own drop-in, read after setup's, puts the unit's mode back.
        late = root / "etc/systemd/system/kamado-flower.service.d/zz-mine.conf"
        late.write_text("[Service]\nStateDirectoryMode=0750\n")
        code, findings = doctor(*args)
        assert code == 1
        assert [f["subject"] for f in failed(findings)] == [
            "kamado-flower.service StateDirectoryMode"
        ]


def test_doctor_in_the_vm_reports_what_the_last_real_guest_probe_proved(tmp_path: Path) -> None:
    cfg = tmp_path / "kamado.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    args = ("--config", str(cfg), "--role", "guest", "--env-file", "/dev/null")
    _, findings = doctor(*args)
    before = next(f for f in findings if f["check"] == "probe")
    assert before["severity"] == "warn" and "no guest probe" in before["detail"]
    probed = kamado("guest", "probe", "--config", str(cfg), "--json", timeout=300)
    backends = json.loads(probed.stdout)["backends"]
    hardware = [b for b in ("qsv", "vaapi") if backends[b]["status"] == "proven"]
    _, findings = doctor(*args)
    after = next(f for f in findings if f["check"] == "probe")
    assert after["severity"] == ("ok" if hardware else "fail"), after
    if not hardware:
        assert "encode.gpu jobs would wait" in after["detail"]
        assert "kamado guest probe" in after["fix"]
