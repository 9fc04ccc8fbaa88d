"""The worker contract the other roles import is declared, and they import nothing else.

`lint-imports` (pyproject's [tool.importlinter]) checks which modules of worker/ the
scheduler, host agent and guest agent may import; this checks the names: every name
another role imports from worker/ is in that module's ``__all__``, and every ``__all__``
lists only names the module has (as httpx's tests/test_exported_members.py does).
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("scheduler", "host_agent", "guest_agent")
# Shared as a whole: every module in these packages is part of the contract.
CONTRACT_PACKAGES = ("worker.settings", "worker.broker", "worker.setup")
CONTRACT_MODULES = ("worker.errors", "worker.jobs", "worker.profiles", "worker.progress",
                    "worker.captions", "worker.process", "worker.spawn", "worker.permissions",
                    "worker.celery_app", "worker.submit")  # fmt: skip


def imports_from_worker() -> dict[str, set[tuple[str, str]]]:
    """worker module → {(importing file, name)} for every role's ``from worker... import``."""
    found: dict[str, set[tuple[str, str]]] = {}
    for role in ROLES:
        for path in sorted((ROOT / role).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                if node.module != "worker" and not node.module.startswith("worker."):
                    continue
                where = str(path.relative_to(ROOT))
                for alias in node.names:
                    if node.module == "worker":  # `from worker import process`: a module
                        found.setdefault(f"worker.{alias.name}", set())
                    else:
                        found.setdefault(node.module, set()).add((where, alias.name))
    return found


def entry_points() -> set[str]:
    """The modules of worker/ that the import-linter contract lets the roles import."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["importlinter"]
    (contract,) = [
        c for c in config["contracts"] if c["name"].startswith("the other roles import only")
    ]
    return {line.split("->")[1].strip() for line in contract["ignore_imports"]}


def declared(module: str) -> bool:
    return (
        module in CONTRACT_MODULES
        or module in entry_points()
        or any(module == p or module.startswith(p + ".") for p in CONTRACT_PACKAGES)
    )


USED = imports_from_worker()


def test_the_roles_import_worker_at_all() -> None:
    # The scan must see the imports it checks: a broken walk would make every test pass.
    assert {"worker.errors", "worker.settings.model", "worker.broker.registry"} <= set(USED)
    assert ("scheduler/control.py", "Registry") in USED["worker.broker.registry"]


@pytest.mark.parametrize("module", sorted(USED))
def test_every_worker_module_a_role_imports_is_declared(module: str) -> None:
    assert declared(module), f"{module} is imported by {sorted(USED[module])} but not declared"


@pytest.mark.parametrize("module", sorted(USED))
def test_every_name_a_role_imports_is_exported(module: str) -> None:
    exported = getattr(importlib.import_module(module), "__all__", None)
    assert exported is not None, f"{module} is imported by other roles and has no __all__"
    missing = sorted({(f, n) for f, n in USED[module] if n not in exported})
    assert not missing, f"{module}.__all__ lacks what these import: {missing}"


def contract_modules() -> list[str]:
    names = set(CONTRACT_MODULES) | entry_points()
    for package in CONTRACT_PACKAGES:
        folder = ROOT / package.replace(".", "/")
        names |= {f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    return sorted(names)


@pytest.mark.parametrize("module", contract_modules())
def test_every_export_exists_and_is_public(module: str) -> None:
    loaded = importlib.import_module(module)
    exported = getattr(loaded, "__all__", [])
    assert len(exported) == len(set(exported)), f"{module}.__all__ repeats a name"
    for name in exported:
        assert not name.startswith("_"), f"{module}.__all__ exports private {name}"
        assert hasattr(loaded, name), f"{module}.__all__ names {name}, which it does not have"


def test_the_declared_entry_points_are_modules_that_exist() -> None:
    for module in sorted(entry_points()):
        importlib.import_module(module)
