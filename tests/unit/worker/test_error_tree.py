"""The error tree drawn in worker/errors.py is the tree the code defines, and kinds are enums."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest

import worker.errors
from worker.encode.stderr import classify
from worker.errors import EncodeError, EncodeErrorKind, KamadoError

ROLES = ("worker", "scheduler", "host_agent", "guest_agent")
# One drawn line: the tree's edges, a class name, then optionally the defining module.
LINE = re.compile(r"^(?P<edges>[ │├└─]*)(?P<name>[A-Z]\w+)(?:\s+(?P<rest>.*))?$")
MODULE = re.compile(r"^[a-z_]+(?:\.[a-z_]+)+$")


def import_every_module() -> None:
    """Import every module of every role, so each error class is defined."""
    for role in ROLES:
        package = importlib.import_module(role)
        for info in pkgutil.walk_packages(package.__path__, f"{role}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def defined_tree() -> dict[str, tuple[str, str]]:
    """Every error class of the roles: name -> (its parent's name, its module)."""
    import_every_module()
    found: dict[str, tuple[str, str]] = {}
    pending = [KamadoError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.split(".")[0] not in ROLES:
                continue  # a test's own subclass is not part of kamado
            assert sub.__name__ not in found, f"two error classes named {sub.__name__}"
            found[sub.__name__] = (cls.__name__, sub.__module__)
            pending.append(sub)
    return found


def drawn_tree() -> dict[str, tuple[str, str]]:
    """The tree in worker/errors.py's docstring: name -> (parent's name, module)."""
    doc = worker.errors.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    lines = [line[4:] for line in block.splitlines() if line.strip()]
    assert lines[0] == "KamadoError"
    drawn: dict[str, tuple[str, str]] = {}
    parents = ["KamadoError"]
    for line in lines[1:]:
        match = LINE.match(line)
        assert match, f"not a tree line: {line!r}"
        depth, rest = len(match["edges"]) // 4, (match["rest"] or "").strip()
        assert len(match["edges"]) % 4 == 0 and 1 <= depth <= len(parents), line
        del parents[depth:]
        module = rest if MODULE.match(rest) else "worker.errors"
        assert match["name"] not in drawn, f"{match['name']} is drawn twice"
        drawn[match["name"]] = (parents[-1], module)
        parents.append(match["name"])
    return drawn


def test_the_drawn_error_tree_lists_exactly_the_classes_with_their_parents_and_modules() -> None:
    defined, drawn = defined_tree(), drawn_tree()
    assert sorted(set(defined) - set(drawn)) == [], "defined but not drawn"
    assert sorted(set(drawn) - set(defined)) == [], "drawn but not defined"
    wrong = {name: (drawn[name], defined[name]) for name in defined if drawn[name] != defined[name]}
    assert wrong == {}, "drawn (parent, module) != defined"


def test_every_encode_error_kind_is_the_string_the_registry_already_stores() -> None:
    stored = ["option", "hardware", "disk", "input", "crash", "stalled", "encode"]
    assert sorted(EncodeErrorKind) == sorted(stored)
    for value in stored:
        kind = EncodeError("x", kind=EncodeErrorKind(value)).kind
        assert kind is EncodeErrorKind(value) and kind == value
        assert json.dumps({"kind": kind}) == json.dumps({"kind": value})
        assert f"{kind}" == str(kind) == value


def test_an_encode_error_takes_an_old_records_string_and_refuses_an_unknown_one() -> None:
    assert EncodeError("x", kind="disk").kind is EncodeErrorKind.DISK  # type: ignore[arg-type]
    assert EncodeError("x").kind is EncodeErrorKind.ENCODE
    with pytest.raises(ValueError, match="spilled"):
        EncodeError("x", kind="spilled")  # type: ignore[arg-type]


def test_stderr_classification_gives_enum_members() -> None:
    assert classify("Device creation failed: -22", 1) is EncodeErrorKind.HARDWARE
    assert classify("", -11) is EncodeErrorKind.CRASH
    assert classify("something else", 1) is EncodeErrorKind.ENCODE
