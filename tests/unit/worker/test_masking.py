"""No password of a broker URL, in any form kamado accepts or refuses, reaches any output."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from worker.cli.config_cmd import app
from worker.settings.masking import mask_url

PASSWORD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=4,
    max_size=30,
).map(lambda tail: "Zq9" + tail)
SCHEME = st.sampled_from(["redis", "rediss", "redis+socket", "REDIS", "http", "redis:", "red is"])
HOST = st.sampled_from(["broker", "10.0.0.5", "[::1]", "broker.home.arpa", ""])
PORT = st.sampled_from(["", ":6379", ":1"])
USER = st.sampled_from(["", "kamado", "default"])


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str]:
    """A URL-ish value carrying a password, in a shape users write (or mistype); and it."""
    pw = draw(PASSWORD)
    put = quote(pw, safe="") if draw(st.booleans()) else pw
    scheme, host, port, user = draw(SCHEME), draw(HOST), draw(PORT), draw(USER)
    sep = draw(st.sampled_from(["://", ":/", "//", ":///", "://"]))
    shape = draw(st.integers(0, 7))
    extra = draw(st.sampled_from(["", "db=0&", "ssl_cert_reqs=none&"]))
    value = [
        f"{scheme}{sep}{user}:{put}@{host}{port}/0",
        f"{scheme}{sep}{host}{port}/0?{extra}password={put}",
        f"{scheme}{sep}/run/redis/redis.sock?{extra}password={put}&db=0",
        f"{scheme}{sep}{user}:{put}@{host}{port}/0?password={put}",
        f"{scheme}{sep}:{put}",
        put,
        f"{scheme}{sep}{put}@{host}{port}",
        f" {scheme}{sep}:{put}@{host} ",
    ][shape]
    return value, pw


def leaked(pw: str, text: str) -> bool:
    """True when the password, or its URL-encoded form, is in the text (wrapping ignored)."""
    flat = re.sub(r"\s", "", text)
    return pw in flat or quote(pw, safe="") in flat


@given(urls())
def test_mask_url_never_returns_the_password(case: tuple[str, str]) -> None:
    value, pw = case
    assert not leaked(pw, mask_url(value))


def test_mask_url_keeps_what_is_not_secret() -> None:
    assert mask_url("redis://kamado:pw@broker:6379/0") == "redis://kamado:***@broker:6379/0"
    assert mask_url("redis://broker/0?db=1&password=pw") == "redis://broker/0?db=1&password=***"
    assert (
        mask_url("redis+socket:///run/redis.sock?password=pw&db=0")
        == "redis+socket:///run/redis.sock?password=***&db=0"
    )
    assert mask_url("rediss://[::1]:6380/2") == "rediss://[::1]:6380/2"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


ROOT_APP = typer.Typer()
ROOT_APP.add_typer(app, name="config")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=urls(), where=st.sampled_from(["file", "env"]), as_json=st.booleans())
def test_config_check_shows_no_password_accepted_or_refused_in_text_or_json(
    runner: CliRunner, tmp_path: Path, case: tuple[str, str], where: str, as_json: bool
) -> None:
    value, pw = case
    config = tmp_path / "kamado.toml"
    env = {"HOME": str(tmp_path), "KAMADO_CONFIG": ""}
    if where == "file":
        config.write_text(f"broker_url = {json.dumps(value)}\n", encoding="utf-8")
    else:
        config.write_text("", encoding="utf-8")
        env["KAMADO_RESULT_BACKEND_URL"] = value
    args = ["config", "check", str(config), *(["--json"] if as_json else [])]
    result = runner.invoke(ROOT_APP, args, env=env)
    assert result.exit_code in (0, 2), result.output
    assert ("broker" in result.stdout) if result.exit_code == 0 else ("error" in result.stderr)
    assert not leaked(pw, result.stdout + result.stderr), (value, result.output)
