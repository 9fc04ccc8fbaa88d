"""Fixtures every test folder may use: a real redis-server per session and per test.

The suite runs in two processes (pytest-xdist, ``--dist loadgroup``; see scripts/test.sh).
Tests that must not share the machine's time with each other are kept in one group, so
one process runs them one after another: the fault tests (leases of a few seconds, kills
and restarts timed against encodes), the set-up tests (they add and remove real Unix
accounts, and shadow's tools lock /etc/passwd) and the EPGStation tests (one server for
the session).

Under ``CI=true`` a test skipped because this machine lacks something the CI machine has
(a program or package, a Python module, network namespaces, root) fails instead: a
missing component must not turn a red run green. Skip reasons say so in the words of
:data:`CI_MUST_RUN`; other skips (a render node present, a parametrized case that does
not apply) stay skips.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.support.media import Clips, make_clips
from tests.support.redis_proc import RedisProcess

# Reasons of skips the CI machine (every component installed, running as root) never needs.
CI_MUST_RUN = re.compile(
    r"\b(is|are) not (installed|available)\b|could not import|\bneeds root\b|run as root"
)

SERIAL_GROUPS = {
    "tests/integration/faults/": "faults",
    "tests/integration/setup/": "accounts",
    # One EPGStation server for the session: its tests in one process.
    "tests/integration/epgstation/": "epgstation",
    # One topology (two namespaces, a booted guest) for both acts, in order.
    "tests/integration/topology/": "topology",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist tags the grouped tests' ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the tests of each folder in :data:`SERIAL_GROUPS` into its xdist group."""
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        for prefix, group in SERIAL_GROUPS.items():
            if where.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run when pytest-xdist's --dist loadgroup would not keep a group together
    (it tags each grouped test's id with "@group"; a pytest it does not know may drop the
    tag, and the serial tests would then race each other in two processes)."""
    if not getattr(session.config.option, "loadgroup", False):  # set in xdist's workers
        return
    for item in session.items:
        marker = item.get_closest_marker("xdist_group")
        if marker is not None and "@" not in item.nodeid:
            raise pytest.UsageError(
                f"pytest-xdist did not tag {item.nodeid} with its group {marker.args[0]!r}: "
                f"this pytest ({pytest.__version__}) and pytest-xdist do not work together "
                "(see the pin in pyproject.toml)"
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI=true, turn a skip for a missing component into a failure naming it."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("CI") == "true":
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if CI_MUST_RUN.search(reason):
            report.outcome = "failed"
            report.longrepr = f"CI=true: this machine must run it, but it skipped: {reason}"
    return report


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A real redis-server (AOF on) shared by the session; flush it if a test needs it empty."""
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A real redis-server for one test, which the test may kill, restart or pause."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.resume() if server.proc and server.proc.poll() is None else None
    server.stop()


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """Broadcast-like and broken recordings made by real ffmpeg, once per session."""
    return make_clips(tmp_path_factory.mktemp("clips"))
