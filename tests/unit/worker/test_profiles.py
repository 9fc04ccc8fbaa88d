"""Profiles: intents, accepted backends, routing, no silent CPU fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from worker.errors import BackendUnavailable, BadInputError
from worker.profiles import (
    BUILTIN_PROFILES,
    QUEUE_CPU,
    QUEUE_GPU,
    Backend,
    Profile,
    all_profiles,
    choose_backend,
    get_profile,
)
from worker.settings.model import load_settings


def test_builtin_profiles_accept_the_documented_backends_in_order() -> None:
    assert BUILTIN_PROFILES["h264-intel"].backends == [Backend.QSV, Backend.VAAPI]
    assert BUILTIN_PROFILES["h264-x264"].backends == [Backend.X264]
    assert BUILTIN_PROFILES["h264-auto"].backends == [Backend.QSV, Backend.VAAPI, Backend.X264]


def test_hardware_profiles_route_to_the_gpu_queue_and_software_to_the_cpu_queue() -> None:
    assert BUILTIN_PROFILES["h264-intel"].queue == QUEUE_GPU
    assert BUILTIN_PROFILES["h264-auto"].queue == QUEUE_GPU
    assert BUILTIN_PROFILES["h264-x264"].queue == QUEUE_CPU


def test_hardware_only_profile_never_runs_on_the_cpu() -> None:
    profile = BUILTIN_PROFILES["h264-intel"]
    assert profile.hardware_only
    with pytest.raises(BackendUnavailable) as info:
        choose_backend(profile, [Backend.X264])
    assert info.value.accepted == ["qsv", "vaapi"]
    assert "this worker has x264" in str(info.value)


def test_best_proven_backend_the_profile_accepts_is_chosen() -> None:
    auto = BUILTIN_PROFILES["h264-auto"]
    assert choose_backend(auto, [Backend.X264, Backend.VAAPI]) is Backend.VAAPI
    assert choose_backend(auto, [Backend.X264]) is Backend.X264


def test_user_profile_may_replace_a_builtin() -> None:
    mine = Profile(backends=[Backend.X264], quality=20)
    assert all_profiles({"h264-auto": mine})["h264-auto"].quality == 20


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(BadInputError, match=r"unknown profile 'h265'.*h264-auto, h264-intel"):
        get_profile("h265", {})


def test_a_backend_listed_twice_is_rejected() -> None:
    with pytest.raises(ValidationError, match="each backend may be listed once"):
        Profile(backends=[Backend.X264, Backend.X264])


def test_a_profile_needs_at_least_one_backend() -> None:
    with pytest.raises(ValidationError):
        Profile(backends=[])


def test_height_source_is_written_in_toml_and_none_still_means_it(tmp_path: Path) -> None:
    config = tmp_path / "kamado.toml"
    config.write_text('[profiles.full]\nbackends = ["x264"]\nheight = "source"\n')
    assert load_settings(config).profiles["full"].height == "source"
    assert Profile(backends=[Backend.X264], height=None).height == "source"  # type: ignore[arg-type]
    assert Profile(backends=[Backend.X264]).height == 720


@pytest.mark.parametrize("height", [100, 4320, "full", "Source", 720.5])
def test_a_height_that_is_neither_lines_nor_source_is_rejected(height: object) -> None:
    with pytest.raises(ValidationError, match="height"):
        Profile(backends=[Backend.X264], height=height)  # type: ignore[arg-type]
