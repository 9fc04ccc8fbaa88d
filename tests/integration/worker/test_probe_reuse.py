"""The backend probe is reused only while what it depends on is unchanged.

The code is in worker/backends/proof_reuse.py.

Real ffmpeg probes (libx264 proves here; this machine has no Intel GPU, so QSV and VAAPI
fail or are absent, as on any box without one). The decision itself is tested over the
space of keys with hypothesis, on reports written to a real state directory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from worker.backends import capabilities
from worker.backends import proof_reuse as probe_reuse
from worker.backends.capabilities import BackendReport, ProbeReport, Status
from worker.profiles import Backend
from worker.settings.model import Settings

pytestmark = pytest.mark.integration

PARTS = ("ffmpeg", "render_node", "drivers", "kamado", "settings")


def _settings(state: Path, **worker: Any) -> Settings:
    return Settings(state_dir=state, guest={"probe_seconds": 0.2}, worker=worker)


def _seed(settings: Settings, key: dict[str, Any], probed_at: float) -> ProbeReport:
    """A stored report and its key, as a start would have left them."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    report = ProbeReport(
        backends={Backend.X264: BackendReport(status=Status.PROVEN, fps=99.0)},
        probed_at=probed_at,
    )
    capabilities.store_probe(settings, report)
    start = probe_reuse.StartProbe(report, reused=False, reason="seeded")
    probe_reuse._save(settings, key, start)
    return report


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changed=st.sets(st.sampled_from(PARTS)),
    age=st.floats(min_value=0, max_value=30 * 86400),
    limit=st.floats(min_value=0, max_value=30 * 86400),
)
def test_a_report_is_reused_exactly_when_nothing_changed_and_it_is_young_enough(
    tmp_path_factory: pytest.TempPathFactory, changed: set[str], age: float, limit: float
) -> None:
    settings = _settings(tmp_path_factory.mktemp("state"), probe_max_age=limit)
    key = {part: {"value": part} for part in PARTS}
    now = 1_900_000_000.0
    seeded = _seed(settings, key, now - age)
    current = {part: ({"value": "other"} if part in changed else key[part]) for part in PARTS}
    report, reason = probe_reuse.reuse_reason(settings, current, now)
    age = now - seeded.probed_at  # as stored, to the float
    if changed or limit == 0 or age > limit:
        assert report is None, reason
        if changed:
            first = next(p for p in PARTS if p in changed)
            assert reason == probe_reuse._changed(key, current) and first.split("_")[0] in reason
    else:
        assert report == seeded, reason


def test_a_report_rewritten_without_a_key_is_not_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "state")
    key: dict[str, Any] = {part: {} for part in PARTS}
    _seed(settings, key, time.time())
    # The guest agent's own probe rewrites probe.json and records no fingerprint.
    fresh = ProbeReport(backends={}, probed_at=time.time() + 1)
    capabilities.store_probe(settings, fresh)
    report, reason = probe_reuse.reuse_reason(settings, key, time.time())
    assert report is None and "no earlier probe" in reason


def test_worker_starts_reuse_a_real_probe_until_ffmpeg_or_the_hardware_says_otherwise(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("ffmpeg")
    assert real is not None
    ffmpeg = bin_dir / "ffmpeg"
    shutil.copy2(os.path.realpath(real), ffmpeg)
    settings = Settings(
        state_dir=tmp_path / "state",
        guest={"probe_seconds": 0.2},
        encode={"ffmpeg": str(ffmpeg)},
    )
    first = probe_reuse.probe_at_start(settings)
    assert not first.reused and Backend.X264 in first.report.proven
    # Proven by this very start: a hardware failure is the GPU guard's business.
    assert probe_reuse.after_hardware_failure(settings, "hardware") is None
    again = probe_reuse.probe_at_start(settings)
    assert again.reused and again.report == first.report, again.reason
    assert probe_reuse.last_start(settings) == (True, again.reason)

    # On a reused report: a hardware failure re-probes, an input failure does not.
    assert probe_reuse.after_hardware_failure(settings, "input") is None
    redone = probe_reuse.after_hardware_failure(settings, "hardware")
    assert redone is not None and redone.probed_at > again.report.probed_at
    assert capabilities.cached_probe(settings) == redone
    assert probe_reuse.stored_probed_at(settings) == redone.probed_at
    assert probe_reuse.last_start(settings) == (False, "a job's hardware failure")

    forced = probe_reuse.probe_at_start(settings, reprobe=True)
    assert not forced.reused and forced.reason == "--reprobe"
    assert forced.report.probed_at > redone.probed_at

    stamp = time.time() + 5  # the same version string, but another binary
    os.utime(ffmpeg, (stamp, stamp))
    rebuilt = probe_reuse.probe_at_start(settings)
    assert not rebuilt.reused and rebuilt.reason == "the ffmpeg build changed"
    stored = json.loads(probe_reuse.key_path(settings).read_text())
    assert stored["probed_at"] == rebuilt.report.probed_at
