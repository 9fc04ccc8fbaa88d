"""[guest] probe_shapes: the names the settings accept are exactly the probe's shapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.backends.proof import SHAPE_NAMES, SHAPES, shapes
from worker.settings.guest import PROBE_SHAPES, GuestSettings


def test_the_settings_know_every_shape_of_the_probe_and_default_to_the_broadcasts() -> None:
    assert PROBE_SHAPES == SHAPE_NAMES
    assert shapes(GuestSettings().probe_shapes) == list(SHAPES)


@given(st.lists(st.sampled_from(PROBE_SHAPES), min_size=1, unique=True))
def test_any_choice_of_known_shapes_is_probed_in_the_order_given(names: list[str]) -> None:
    chosen = GuestSettings(probe_shapes=names).probe_shapes
    assert [s.name for s in shapes(chosen)] == names


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([], "at least 1"),
        (["640x360p"], "unknown probe shape '640x360p'; known: 1440x1080i"),
        (["320x240i", "320x240i"], "a shape is named twice"),
    ],
)
def test_a_bad_shape_list_names_the_reason(value: list[str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        GuestSettings(probe_shapes=value)
