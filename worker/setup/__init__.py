"""`kamado setup`: idempotent, logged changes that put a box into the documented shape."""

from __future__ import annotations

from worker.setup.errors import SetupError
from worker.setup.system import Action, System

__all__ = ["Action", "SetupError", "System"]
