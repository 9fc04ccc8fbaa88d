"""The paramiko the tests run is inside pyproject's bound, and has what the fallback uses."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import paramiko
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]


def test_paramiko_has_an_upper_bound_and_the_tested_version_is_inside_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    (line,) = [d for d in project["dependencies"] if d.startswith("paramiko")]
    requirement = Requirement(line)
    assert any(s.operator == "<" for s in requirement.specifier), f"{line}: no upper bound"
    assert requirement.specifier.contains(version("paramiko")), (line, version("paramiko"))


def test_the_paramiko_fallback_finds_every_client_method_it_calls() -> None:
    # worker/staging/sftp/paramiko_files.py pipelines requests with SFTPClient methods
    # paramiko does not document; a paramiko inside the bound that renamed one must fail
    # here, not on a user's box.
    source = (ROOT / "worker" / "staging" / "sftp" / "paramiko_files.py").read_text("utf-8")
    called = set(re.findall(r"raw\.(_[a-z_]+)\(", source))
    assert called == {"_async_request", "_read_response", "_convert_status", "_request"}
    for name in called:
        assert callable(getattr(paramiko.SFTPClient, name, None)), name
