"""worker.outputs declares its public surface: what __all__ names is exactly what it offers."""

from __future__ import annotations

import types

import worker.outputs


def test_all_names_exactly_the_public_objects_of_the_package() -> None:
    public = {
        name
        for name, value in vars(worker.outputs).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert sorted(worker.outputs.__all__) == sorted(public)
