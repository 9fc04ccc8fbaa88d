"""The span recorder writes one whole JSON line per step, also for a step that raised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker import spans


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.text(min_size=1), st.booleans()), min_size=1, max_size=8))
def test_every_step_is_one_json_line_with_its_duration(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[tuple[str, bool]],
) -> None:
    target = tmp_path_factory.mktemp("spans") / "spans.jsonl"
    monkeypatch.setenv(spans.ENV, str(target))
    for step, fails in steps:
        try:
            with spans.span("job-1", step):
                if fails:
                    raise ValueError(step)
        except ValueError:
            pass
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["step"] for line in lines] == [step for step, _ in steps]
    assert all(line["job"] == "job-1" and line["seconds"] >= 0 for line in lines)
    starts = [line["start"] for line in lines]
    assert starts == sorted(starts)


def test_without_the_variable_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(spans.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with spans.span("job-1", "step"):
        pass
    spans.mark("job-1", "instant")
    assert list(tmp_path.iterdir()) == []
