"""Under CI=true a skip for a missing component fails; other skips stay skips."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPS = """
import pytest

def test_missing_program() -> None:
    pytest.skip("frobnicator is not installed (apt-get install frob)")

def test_missing_module() -> None:
    pytest.importorskip("no_such_module_kamado_needs")

@pytest.mark.skipif(True, reason="creates real accounts (run as root)")
def test_needs_root() -> None:
    pass

def test_no_namespaces() -> None:
    pytest.skip("network namespaces are not available: ip netns add is not permitted")

def test_render_node() -> None:
    pytest.skip("this machine has a render node; the dry run is for GPU-less machines")

@pytest.mark.xfail(reason="a known bug, not a missing component: is not installed")
def test_expected_failure() -> None:
    raise AssertionError
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401")
    pytester.makepyfile(test_skips=SKIPS)
    return pytester


def test_under_ci_a_missing_component_fails_and_other_skips_stay_skips(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(failed=3, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*CI=true: this machine must run it*frobnicator*"])


def test_off_ci_every_skip_is_a_skip(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(skipped=5, xfailed=1)
