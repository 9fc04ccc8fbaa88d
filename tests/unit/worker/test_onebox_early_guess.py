"""The quick path's guess at the one-box session is the session's, or no guess at all.

For generated command lines, environments and config files, `kamado encode`'s quick
path (worker/onebox_early.py, which reads argv, KAMADO_* and the TOML by hand) must name
exactly the broker-and-worker pair the full command line then asks for from its
validated settings, or decline; a wrong guess would start a worker the session throws
away (or, worse, one it keeps with the wrong settings).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.onebox_early import Wanted, wanted_from
from worker.settings.model import load_settings

options = st.fixed_dictionaries(
    {
        "jobs": st.sampled_from([None, ("--jobs", "2"), ("-j", "3"), ("--jobs=4",)]),
        "out": st.sampled_from([None, "flag", "env", "config"]),
        "reprobe": st.booleans(),
        "env_slots": st.sampled_from([None, "2", "5"]),
        "config_slots": st.sampled_from([None, 3]),
        "state": st.sampled_from([None, "env", "config"]),
        "explicit_config": st.booleans(),
        "broker": st.sampled_from([None, "env", "config"]),
        "shuffle": st.randoms(use_true_random=False),
    }
)


def expected(argv_jobs: int | None, cfg: Path | None, out: Path | None, reprobe: bool) -> Wanted:
    """What onebox.session asks for, from the validated settings (as encode_cmd passes it)."""
    s = load_settings(cfg)
    chosen = out or s.encode.output_dir
    return Wanted(
        state_dir=s.state_dir,
        concurrency=argv_jobs or s.worker.concurrency,
        config=cfg,
        output_dir=chosen.expanduser().absolute() if chosen is not None else None,
        reprobe=reprobe,
    )


def environment(o: dict[str, object], root: Path, outs: dict[str, Path]) -> dict[str, str]:
    """The KAMADO_* variables a generated case sets."""
    env = {"HOME": str(root)}
    if o["state"] == "env":
        env["KAMADO_STATE_DIR"] = str(root / "state-env")
    if o["env_slots"]:
        env["KAMADO_WORKER__CONCURRENCY"] = str(o["env_slots"])
    if o["out"] == "env":
        env["KAMADO_ENCODE__OUTPUT_DIR"] = str(outs["env"])
    if o["broker"] == "env":
        env["KAMADO_BROKER_URL"] = "redis://127.0.0.1:1/0"
    return env


def config_text(o: dict[str, object], root: Path, outs: dict[str, Path]) -> str:
    """The config file a generated case writes."""
    toml = []
    if o["broker"] == "config":
        toml.append('broker_url = "redis://127.0.0.1:1/0"')
    if o["state"] == "config":
        toml.append(f'state_dir = "{root / "state-config"}"')
    if o["config_slots"]:
        toml.append(f"[worker]\nconcurrency = {o['config_slots']}")
    if o["out"] == "config":
        toml.append(f'[encode]\noutput_dir = "{outs["config"]}"')
    return "\n".join(toml) + "\n"


def command_line(o: dict[str, object], rec: Path, outs: dict[str, Path], cfg: Path) -> list[str]:
    """`encode FILE` and the generated options, in a generated order."""
    groups: list[list[str]] = [[str(rec)]]
    jobs = o["jobs"]
    if isinstance(jobs, tuple):
        groups.append(list(jobs))
    if o["out"] == "flag":
        groups.append(["-o", str(outs["flag"])])
    if o["reprobe"]:
        groups.append(["--reprobe"])
    if o["explicit_config"]:
        groups.append(["--config", str(cfg)])
    rnd = o["shuffle"]
    assert hasattr(rnd, "shuffle")
    rnd.shuffle(groups)
    return ["encode"] + [a for group in groups for a in group]


@settings(max_examples=60, deadline=None)
@given(o=options)
def test_the_guess_is_the_sessions_or_none(o: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rec = root / "rec.ts"
        rec.write_bytes(b"\x47" * 188)
        outs = {k: root / k for k in ("flag", "env", "config")}
        for d in outs.values():
            d.mkdir()
        cfg = root / "kamado.toml"
        cfg.write_text(config_text(o, root, outs))
        env = environment(o, root, outs)
        if not o["explicit_config"]:
            env["KAMADO_CONFIG"] = str(cfg)
        jobs = o["jobs"]
        argv_jobs = int(jobs[-1].split("=")[-1]) if isinstance(jobs, tuple) else None
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            guess = wanted_from(command_line(o, rec, outs, cfg))
            want = None
            if o["broker"] is None:
                out = outs["flag"] if o["out"] == "flag" else None
                explicit = cfg if o["explicit_config"] else None
                want = expected(argv_jobs, explicit, out, bool(o["reprobe"]))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert guess == want


@pytest.mark.parametrize(
    "argv",
    [
        ["encode", "--help"],
        ["encode"],
        ["encode", "/no/such/file.ts"],
        ["encode", "{rec}", "-o", "/no/such/dir"],
        ["encode", "{rec}", "--jobs"],
        ["encode", "{rec}", "--unknown-flag"],
    ],
)
def test_no_guess_when_in_doubt(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = tmp_path / "rec.ts"
    rec.write_bytes(b"x")
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in [k for k in os.environ if k.upper().startswith("KAMADO_")]:
        monkeypatch.delenv(key)
    assert wanted_from([a.format(rec=rec) for a in argv]) is None
